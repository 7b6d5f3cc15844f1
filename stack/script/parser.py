"""Parse packetdrill `.pkt` text into `stack.script.ast` values.

A script is a list of lines: `--name=value` option lines, `` `shell` `` lines, and events. An event is a
time spec followed by an inbound (`<`) or outbound (`>`) TCP packet, an inbound ICMP error, a system call
with its result, or a `%{ python }%` block. Comments are `//` to the end of the line and `/* ... */`; a
system call may span lines (its parentheses and braces are balanced across them).
"""

from __future__ import annotations

import re

from stack.script.ast import (
    ANY,
    AddressOf,
    Arg,
    Array,
    BitOr,
    Call,
    Event,
    IcmpLine,
    Name,
    PacketLine,
    PythonLine,
    Script,
    ShellLine,
    Sizeof,
    Struct,
    SyscallLine,
    TimeKind,
    TimeSpec,
)


class ScriptSyntaxError(ValueError):
    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


_NUM = r"(?:\d+(?:\.\d+|\.(?!\.))?|\.\d+)"  # `0.` is a number, but `0...` is 0 then an ellipsis
_TIME = re.compile(
    rf"(?P<any>\*)|(?P<plus>\+)?(?P<start>{_NUM})"
    rf"(?:~\+?(?P<end>{_NUM}))?"  # a range: 0.1~0.2
    rf"(?:\s*\.\.\.\s*\+?(?P<bend>{_NUM}))?"  # a blocking call: 0.1...0.2 (or 0.1 ... 0.2)
)
_PACKET = re.compile(
    r"(?P<dir>[<>])\s+(?:(?P<sport>\d+)>(?P<dport>\d+)\s+)?"  # optional port info: `< 40001>8080 S ...`
    # optional IP ECN field (RFC 3168), `< [ce] . 1:1001(1000)`, or the whole TOS byte, `> [tos 0x28] . ...`
    r"(?:[\[(](?:(?P<ecn>noecn|ect0|ect1|ce)|tos\s+(?P<tos>0x[0-9a-fA-F]+))[\])]\s+)?"
    r"(?P<flags>[SFRPUEWA.]+|-)\s+(?P<start>\d+):(?P<end>\d+)\((?P<len>\d+)\)(?P<rest>.*)$"
)
_ICMP = re.compile(
    r"<\s+icmp\s+(?P<kind>[a-z_]+)(?:\s+(?P<code>(?!mtu\b)(?:[a-z_]+|CODE)))?(?:\s+mtu\s+(?P<mtu>\d+))?"
    r"(?:\s+\[(?P<start>\d+):(?P<end>\d+)\(\d+\)\])?\s*$"
)
_SYSCALL_NAME = re.compile(r"(?P<name>[A-Za-z_]\w*)\s*\(")
_RESULT = re.compile(
    r"=\s*(?P<result>-?(?:0[xX][0-9a-fA-F]+|\d+)|\.\.\.)\s*(?P<errno>[A-Z][A-Z0-9_]*)?\s*(?:\((?P<text>[^)]*)\))?\s*$"
)
_OPTION_LINE = re.compile(r"--(?P<key>[\w-]+)(?:=(?P<value>\S*))?$")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<ellipsis>\.\.\.)
      | (?P<number>-?(?:0[xX][0-9a-fA-F]+|\d+))
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<name>[A-Za-z_]\w*)
      | (?P<punct>[\[\]{}(),=&|])
    )""",
    re.X,
)

_OPTION_ARITY = {"nop": 0, "eol": 0, "sackOK": 0, "mss": 1, "wscale": 1}
# the largest value each option's fields hold on the wire, as packetdrill's parser checks them
_OPTION_LIMIT = {"mss": 0xFFFF, "wscale": 0xFF, "TS": 0xFFFFFFFF, "sack": 0xFFFFFFFF}
# packetdrill options tcpstack does not implement (MD5 signatures, experimental)
_OTHER_OPTIONS = {"md5", "exp"}
# fast open's cookie option (kind 34, FOEXP the experimental kind 254): its bytes, none for a request
FAST_OPEN_OPTIONS = {"FO", "FOEXP"}
FAST_OPEN_COOKIE_MAX = 16  # bytes (packetdrill's MAX_TCP_FAST_OPEN_COOKIE_BYTES)
# the bytes of `FO TFO_COOKIE`: packetdrill's runner defines TFO_COOKIE as the cookie Linux makes for the
# script's addresses under the key its defaults set; the script runner computes it for its own stack
TFO_COOKIE: tuple[int, ...] = (-1,)


def _logical_lines(text: str, path: str) -> list[tuple[int, str]]:
    """Remove comments; keep strings and backquoted commands (which may span lines) whole."""
    lines: list[tuple[int, str]] = []
    buf: list[str] = []
    line = start = 1
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            lines.append((start, "".join(buf)))
            buf = []
            line += 1
            start = line
            i += 1
        elif text.startswith("%{", i):
            j = text.find("}%", i + 2)
            if j < 0:
                raise ScriptSyntaxError(path, line, "unterminated %{ python block")
            if not "".join(buf).strip():
                start = line
            buf.append(text[i : j + 2])
            line += text.count("\n", i, j)
            i = j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise ScriptSyntaxError(path, line, "unterminated /* comment")
            line += text.count("\n", i, j)
            if not "".join(buf).strip():
                start = line
            i = j + 2
        else:
            if not "".join(buf).strip():
                start = line
            if c in '"`':
                j = text.find(c, i + 1)
                if j < 0:
                    raise ScriptSyntaxError(path, line, f"unterminated {c}")
                buf.append(text[i : j + 1])
                line += text.count("\n", i, j)
                i = j + 1
            else:
                buf.append(c)
                i += 1
    lines.append((start, "".join(buf)))
    return lines


def _time(m: re.Match) -> TimeSpec:
    if m["any"]:
        return TimeSpec(TimeKind.ANY)
    kind = TimeKind.RELATIVE if m["plus"] else TimeKind.ABSOLUTE
    end = float(m["end"]) if m["end"] is not None else None
    bend = float(m["bend"]) if m["bend"] is not None else None
    return TimeSpec(kind, float(m["start"]), end, bend)


# ---------------------------------------------------------------- packets


def _fast_open_cookie(words: list[str], item: str, err) -> tuple[int, ...]:
    """`FO`, `FO 0011aabb` or `FO TFO_COOKIE` (and FOEXP's): the cookie's bytes, as packetdrill's parser
    takes them (an even number of hex digits, 16 bytes at most)."""
    if len(words) == 1:
        return ()
    if len(words) != 2:
        raise err(f"bad TCP option {item!r}")
    if words[1] == "TFO_COOKIE":
        return TFO_COOKIE
    digits = words[1]
    if len(digits) % 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise err(f"TCP option {item!r}: a fast open cookie is an even number of hex digits")
    if len(digits) // 2 > FAST_OPEN_COOKIE_MAX:
        raise err(f"TCP option {item!r}: a fast open cookie has {FAST_OPEN_COOKIE_MAX} bytes at most")
    return tuple(bytes.fromhex(digits))


def _tcp_options(text: str, err) -> tuple[tuple[str, tuple[int, ...]], ...]:
    out: list[tuple[str, tuple[int, ...]]] = []
    for item in (p.strip() for p in text.split(",")):
        words = item.split()
        if not words:
            raise err(f"empty TCP option in <{text}>")
        name = words[0]
        if name in _OTHER_OPTIONS:  # kept by name; the runner skips a script that uses one
            out.append((name, ()))
            continue
        if name in FAST_OPEN_OPTIONS:
            out.append((name, _fast_open_cookie(words, item, err)))
            continue
        if name not in _OPTION_ARITY and name not in ("TS", "sack"):
            raise err(f"unknown TCP option {name!r}")
        try:
            if name in _OPTION_ARITY:
                if len(words) != 1 + _OPTION_ARITY[name]:
                    raise ValueError
                out.append((name, tuple(int(w) for w in words[1:])))
            elif name == "TS":  # TS val N ecr N
                if len(words) != 5 or words[1] != "val" or words[3] != "ecr":
                    raise ValueError
                out.append((name, (int(words[2]), int(words[4]))))
            elif name == "sack":  # sack a:b c:d ...
                if len(words) < 2:
                    raise ValueError
                blocks: list[int] = []
                for block in words[1:]:
                    left, right = block.split(":")
                    blocks += [int(left), int(right)]
                out.append((name, tuple(blocks)))
        except ValueError:
            raise err(f"bad TCP option {item!r}") from None
        limit = _OPTION_LIMIT.get(name)
        if limit is not None and not all(0 <= value <= limit for value in out[-1][1]):
            raise err(f"TCP option {item!r}: a value out of its field's range (0 to {limit})")
    return tuple(out)


def _packet(m: re.Match, line: int, text: str, time: TimeSpec, err) -> PacketLine:
    start, end, length = int(m["start"]), int(m["end"]), int(m["len"])
    if end - start != length:
        raise err(f"{start}:{end}({length}): the length does not match")
    if time.blocking_end is not None:
        raise err("'...' (a blocking call) is only for system calls")
    rest = m["rest"].strip()
    options = None
    any_options = False
    if "<" in rest:
        rest, _, opt_text = rest.partition("<")
        opt_text = opt_text.strip()
        if not opt_text.endswith(">"):
            raise err("TCP options must end with '>'")
        opt_text = opt_text[:-1].strip()
        if opt_text == "...":
            any_options = True
        else:
            options = _tcp_options(opt_text, err)
    fields: dict[str, int] = {}
    words = rest.split()
    for i in range(0, len(words), 2):
        key = words[i]
        value = words[i + 1] if i + 1 < len(words) else ""
        if key not in ("ack", "win", "urg"):
            raise err(f"unexpected {key!r} in packet")
        if not value.isdigit():
            raise err(f"{key} needs a number, got {value!r}")
        fields[key] = int(value)
    for key in ("win", "urg"):
        if fields.get(key, 0) > 0xFFFF:
            raise err(f"{key} {fields[key]} does not fit the 16-bit {key} field")
    ports = [None if m[k] is None else int(m[k]) for k in ("sport", "dport")]
    if any(p is not None and not 0 < p <= 0xFFFF for p in ports):
        raise err(f"port {m['sport']}>{m['dport']} is out of range")
    return PacketLine(
        line,
        text,
        time,
        m["dir"] == "<",
        m["flags"],
        start,
        end,
        fields.get("ack"),
        fields.get("win"),
        options,
        any_options,
        ports[0],
        ports[1],
        fields.get("urg"),
        m["ecn"],
        None if m["tos"] is None else int(m["tos"], 16),
    )


# ---------------------------------------------------------------- system calls


class _Args:
    """A small recursive-descent parser over the argument tokens of one system call."""

    def __init__(self, text: str, err) -> None:
        self.err = err
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise err(f"cannot parse argument text {text[pos:].strip()!r}")
            kind = m.lastgroup
            self.tokens.append((kind, m[kind]))
            pos = m.end()
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, want: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise self.err("unexpected end of the argument list" + (f": expected {want!r}" if want else ""))
        token = self.tokens[self.i]
        if want is not None and token[1] != want:
            raise self.err(f"expected {want!r}, got {token[1]!r}")
        self.i += 1
        return token

    def arg_list(self, close: str) -> tuple[Arg, ...]:
        items: list[Arg] = []
        if self.peek() == close:
            self.take(close)
            return ()
        while True:
            items.append(self.arg())
            if self.take()[1] == close:
                return tuple(items)
            if self.tokens[self.i - 1][1] != ",":
                raise self.err(f"expected ',' or {close!r}, got {self.tokens[self.i - 1][1]!r}")

    def arg(self) -> Arg:
        terms = [self.primary()]
        while self.peek() == "|":
            self.take("|")
            terms.append(self.primary())
        return terms[0] if len(terms) == 1 else BitOr(tuple(terms))

    def primary(self) -> Arg:
        kind, value = self.take()
        if kind == "ellipsis":
            return ANY
        if kind == "number":
            return _integer(value)
        if kind == "string":
            return value[1:-1].encode().decode("unicode_escape")
        if value == "[":
            return Array(self.arg_list("]"))
        if value == "{":
            return self.struct()
        if value == "&":
            return AddressOf(self.primary())
        if kind == "name":
            if value == "sizeof" and self.peek() == "(":
                self.take("(")
                words = []  # `sizeof(int)`, `sizeof(struct linger)`
                while self.peek() not in (")", None):
                    words.append(self.take()[1])
                self.take(")")
                return Sizeof(" ".join(words))
            if self.peek() == "(":
                self.take("(")
                return Call(value, self.arg_list(")"))
            return Name(value)
        raise self.err(f"unexpected {value!r} in the arguments")

    def _counted_key(self) -> str | None:
        """`name(N)=` or `name(...)=` at the cursor: consume it and return the name."""
        t = self.tokens
        i = self.i
        if not (i + 4 < len(t) and t[i][0] == "name" and t[i + 1][1] == "(" and t[i + 3][1] == ")"):
            return None
        if t[i + 4][1] != "=":
            return None
        self.i = i + 5
        return t[i][1]

    def struct(self) -> Struct:
        fields: list[tuple[str | None, Arg]] = []
        if self.peek() == "}":
            self.take("}")
            return Struct(())
        while True:
            if self.i + 1 < len(self.tokens) and self.tokens[self.i][0] == "name" and self.tokens[self.i + 1][1] == "=":
                key = self.take()[1]
                self.take("=")
                fields.append((key, self.arg()))
            elif (counted := self._counted_key()) is not None:
                fields.append((counted, self.arg()))  # `msg_iov(1)=[...]`: the count is implied by the list
            else:
                fields.append((None, self.arg()))
            sep = self.take()[1]
            if sep == "}":
                return Struct(tuple(fields))
            if sep != ",":
                raise self.err(f"expected ',' or '}}' in a struct, got {sep!r}")


def _syscall(rest: str, line: int, text: str, time: TimeSpec, err) -> SyscallLine:
    m = _SYSCALL_NAME.match(rest)
    if m is None:
        raise err(f"cannot parse {text!r}: expected a packet (< or >) or a system call")
    close = _closing_paren(rest, m.end() - 1)
    if close is None:
        raise err("unbalanced parentheses in the system call")
    args = _Args(rest[m.end() : close + 1], err)
    values = args.arg_list(")")
    result_text = rest[close + 1 :].strip()
    r = _RESULT.match(result_text)
    if r is None:
        raise err(f"expected '= result' after {m['name']}(...), got {result_text or 'nothing'!r}")
    result = ANY if r["result"] == "..." else _integer(r["result"])
    if r["errno"] and result != -1:
        raise err(f"an errno ({r['errno']}) goes with the result -1, not {r['result']}")
    return SyscallLine(line, text, time, m["name"], values, result, r["errno"], r["text"])


def _closing_paren(text: str, open_at: int) -> int | None:
    depth, quote = 0, False
    for i in range(open_at, len(text)):
        c = text[i]
        if c == '"' and text[i - 1] != "\\":
            quote = not quote
        elif not quote and c == "(":
            depth += 1
        elif not quote and c == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


# ---------------------------------------------------------------- lines


def _integer(text: str) -> int:
    """A number as packetdrill's lexer reads it: 0x and hex digits, else decimal (atoll: `010` is 10)."""
    return int(text, 16) if "x" in text.lower() else int(text, 10)


def _event(number: int, line: str, path: str) -> Event:
    def err(message: str) -> ScriptSyntaxError:
        return ScriptSyntaxError(path, number, message)

    if line.startswith("`"):
        return _shell(number, line, err)
    m = _TIME.match(line)
    if m is None or m.end() == 0 or (m.end() < len(line) and not line[m.end()].isspace()):
        raise err(f"cannot parse {line!r}: an event starts with a time (0.1, +0.1, *, 0.1~0.2)")
    time = _time(m)
    rest = line[m.end() :].strip()
    if rest.startswith("`"):
        return _shell(number, line, err)
    if rest.startswith("%{"):
        if not rest.endswith("}%"):
            raise err("a python block must end with }%")
        return PythonLine(number, line, time, rest[2:-2])
    if i := _ICMP.match(rest):
        return _icmp(i, number, line, time)
    if p := _PACKET.match(rest):
        return _packet(p, number, line, time, err)
    if rest[:1] in "<>":
        raise err(f"cannot parse packet {rest!r}: expected FLAGS start:end(len)")
    return _syscall(rest, number, line, time, err)


def _icmp(m: re.Match, number: int, line: str, time: TimeSpec) -> IcmpLine:
    def num(key: str) -> int | None:
        return None if m[key] is None else int(m[key])

    return IcmpLine(number, line, time, m["kind"], m["code"], num("mtu"), num("start"), num("end"))


def _shell(number: int, line: str, err) -> ShellLine:
    command = line[line.index("`") :].strip()
    if len(command) < 2 or not command.endswith("`"):
        raise err("a shell command must be enclosed in backquotes")
    return ShellLine(number, line, command[1:-1].strip())


def _depth(text: str) -> int:
    """How many (, [ and { the line leaves open, outside strings: > 0 means it goes on."""
    depth, quote = 0, False
    for i, c in enumerate(text):
        if c == '"' and (i == 0 or text[i - 1] != "\\"):
            quote = not quote
        elif not quote and c in "([{":
            depth += 1
        elif not quote and c in ")]}":
            depth -= 1
    return depth


def _joined(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """A system call whose brackets stay open goes on on the next lines (sendmsg structs, poll)."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in lines:
        if pending is not None:
            pending = (pending[0], pending[1] + " " + raw.strip())
        elif raw.strip() and not raw.lstrip().startswith(("`", "--")) and "%{" not in raw and _depth(raw) > 0:
            pending = (number, raw)
        else:
            out.append((number, raw))
            continue
        if _depth(pending[1]) <= 0:
            out.append(pending)
            pending = None
    if pending is not None:
        out.append(pending)  # unbalanced to the end: the syscall parser reports it
    return out


def parse(text: str, path: str = "<script>") -> Script:
    events: list[Event] = []
    options: list[tuple[str, str]] = []
    for number, raw in _joined(_logical_lines(text, path)):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("--"):
            m = _OPTION_LINE.match(line)
            if m is None:
                raise ScriptSyntaxError(path, number, f"bad option line {line!r}: expected --name=value")
            options.append((m["key"], m["value"] if m["value"] is not None else ""))
            continue
        events.append(_event(number, line, path))
    return Script(path, tuple(events), tuple(options))


def parse_file(path: str) -> Script:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:  # a pcap or another binary file given as a script: say where
        with open(path, "rb") as f:
            data = f.read()
        raise ScriptSyntaxError(path, _line_of_first_bad_byte(data), "not a script: not UTF-8 text") from None
    return parse(text, path)


def _line_of_first_bad_byte(data: bytes) -> int:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1
    return 1  # (the file changed between the two reads)

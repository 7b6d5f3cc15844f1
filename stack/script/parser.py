"""Parse packetdrill `.pkt` text (the subset tcpstack runs) into `stack.script.ast` values."""

from __future__ import annotations

import re

from stack.script.ast import PacketLine, Script, SyscallLine, TimeSpec


class ScriptSyntaxError(ValueError):
    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")


_TIME = r"(?P<time>\*|[+]?(?:\d+(?:\.\d*)?|\.\d+))"
_PACKET = re.compile(
    _TIME + r"\s+(?P<dir>[<>])\s+(?P<flags>[SFRPUEW.]+)\s+(?P<start>\d+):(?P<end>\d+)\((?P<len>\d+)\)"
    r"(?P<rest>.*)$"
)
_SYSCALL = re.compile(_TIME + r"\s+(?P<name>[a-z_]\w*)\((?P<args>.*)\)\s*=\s*(?P<result>-?\d+|\.\.\.)(?P<errno>.*)$")
_OPTION_LINE = re.compile(r"^--(?P<key>[\w-]+)=(?P<value>\S+)$")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def _time(raw: str) -> TimeSpec:
    if raw == "*":
        return TimeSpec(None)
    return TimeSpec(float(raw.lstrip("+")), relative=raw.startswith("+"))


def _split_args(text: str) -> tuple[str, ...]:
    """Split at top-level commas: brackets, braces and quotes group."""
    args, depth, current, quote = [], 0, [], False
    for ch in text:
        if ch == '"':
            quote = not quote
        elif not quote and ch in "([{":
            depth += 1
        elif not quote and ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        args.append("".join(current).strip())
    return tuple(args)


def _options(text: str, path: str, line: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    out = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        words = item.split()
        name = words[0]
        try:
            if name in ("nop", "eol", "sackOK"):
                out.append((name, ()))
            elif name in ("mss", "wscale"):
                out.append((name, (int(words[1]),)))
            elif name == "TS":  # TS val N ecr N
                out.append((name, (int(words[2]), int(words[4]))))
            elif name == "sack":
                blocks = []
                for block in words[1:]:
                    left, right = block.split(":")
                    blocks += [int(left), int(right)]
                out.append((name, tuple(blocks)))
            else:
                raise ScriptSyntaxError(path, line, f"unknown TCP option {name!r}")
        except (IndexError, ValueError) as exc:
            if isinstance(exc, ScriptSyntaxError):
                raise
            raise ScriptSyntaxError(path, line, f"bad TCP option {item!r}") from None
    return tuple(out)


def _packet(m: re.Match, path: str, line: int, text: str) -> PacketLine:
    start, end, length = int(m["start"]), int(m["end"]), int(m["len"])
    if end - start != length:
        raise ScriptSyntaxError(path, line, f"{start}:{end}({length}): the length does not match")
    rest = m["rest"].strip()
    options = None
    if "<" in rest:
        rest, _, opt_text = rest.partition("<")
        if not opt_text.rstrip().endswith(">"):
            raise ScriptSyntaxError(path, line, "TCP options must end with '>'")
        options = _options(opt_text.rstrip()[:-1], path, line)
    ack = win = None
    words = rest.split()
    i = 0
    while i < len(words):
        key = words[i]
        if key in ("ack", "win") and i + 1 < len(words) and words[i + 1].isdigit():
            if key == "ack":
                ack = int(words[i + 1])
            else:
                win = int(words[i + 1])
            i += 2
        else:
            raise ScriptSyntaxError(path, line, f"unexpected {key!r} in packet")
    return PacketLine(line, text, _time(m["time"]), m["dir"] == "<", m["flags"], start, end, ack, win, options)


def parse(text: str, path: str = "<script>") -> Script:
    script = Script(path)
    for number, raw in enumerate(_strip_comments(text).splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if m := _OPTION_LINE.match(line):
            script.options[m["key"]] = m["value"]
            continue
        if line.startswith("`") or re.match(_TIME + r"\s+`", line):
            raise ScriptSyntaxError(path, number, "shell commands are not supported")
        if m := _PACKET.match(line):
            script.events.append(_packet(m, path, number, line))
            continue
        if m := _SYSCALL.match(line):
            errno = m["errno"].strip()
            script.events.append(
                SyscallLine(
                    number,
                    line,
                    _time(m["time"]),
                    m["name"],
                    _split_args(m["args"]),
                    m["result"],
                    errno.split()[0] if errno else None,
                )
            )
            continue
        raise ScriptSyntaxError(path, number, f"cannot parse {line!r}")
    return script

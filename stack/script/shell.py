"""Backquoted shell lines of packetdrill scripts, interpreted from a known vocabulary.

packetdrill runs these on its host; tcpstack never does. The commands the public scripts use to set a
host up are understood and applied to the stack of the run instead: the corpora's `defaults.sh` (Linux's
production defaults), `sysctl -q net.ipv4.NAME=VALUE` and `set_sysctls.py /proc/sys/net/ipv4/NAME=VALUE`,
`echo V > /sys/module/tcp_cubic/parameters/NAME` (CUBIC's HyStart parameters), `ethtool -K tun0 tso off`,
`ip route change` (advmss, mtu, initcwnd), `ip link set dev tun0 mtu N`, a pfifo or fq `tc qdisc`,
`nstat` counter checks, `$((...))` arithmetic, and the housekeeping commands that have nothing to do
here. Anything else makes the script SKIP with the command as the reason: a command that is not
understood must never be taken as done.
"""

from __future__ import annotations

import ast
import operator
import re
import shlex
from dataclasses import dataclass, field

from stack.script.errors import ScriptSkip
from stack.script.files import Files

# What the corpora's defaults.sh sets: Linux's production values for the TCP sysctls
LINUX_DEFAULTS: dict[str, str] = {
    "tcp_rmem": "4096 540000 15728640",
    "tcp_wmem": "4096 262144 4194304",
    "tcp_timestamps": "1",
    "tcp_syn_retries": "5",
    "tcp_synack_retries": "5",
    "tcp_frto": "2",
    "tcp_sack": "1",
    "tcp_dsack": "1",
    "tcp_fack": "0",
    "tcp_reordering": "3",
    "tcp_congestion_control": "cubic",
    "tcp_slow_start_after_idle": "0",
    "tcp_early_retrans": "4",
    "tcp_recovery": "1",
    "tcp_tso_win_divisor": "3",
    "tcp_ecn": "0",
    "tcp_pacing_ss_ratio": "200",
    "tcp_pacing_ca_ratio": "120",
    "tcp_notsent_lowat": "4294967295",
    "tcp_fastopen": "0x3",
    "tcp_fastopen_key": "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4",
    "tcp_syncookies": "1",
    # not a sysctl: tcp_cubic's module parameter as the module loads, which a Linux host runs with
    "tcp_cubic.hystart_detect": "3",
}
# packetdrill's own tests (gtests/net/common/defaults.sh) differ: every listener takes fast open (0x400)
GTESTS_FAST_OPEN: str = "0x70403"
_NO_OP = re.compile(
    r"(ip tcp_metrics flush( all)?|/tmp/sysctl_restore_\S*\.sh|true|:)$"  # nothing cached, nothing to restore
)
_REDIRECT = re.compile(r"\s*(\d?>&\d|&>\s*\S+|\d?>>?\s*/dev/null)")


MAX_ARITHMETIC = 200  # characters of a `$((...))`: the selftests' are a dozen
FIFO_UNLIMITED = 1000  # packets: a pfifo this long holds any burst a script sends, as no qdisc at all


class ShellSkip(ScriptSkip):
    """A command outside the vocabulary: the script cannot run as its author meant."""


@dataclass
class Host:
    """What the shell lines of one script changed."""

    sysctls: dict[str, str] = field(default_factory=dict)  # net.ipv4 name -> value, in order of setting
    tso: bool = True  # packetdrill's tun device segments by TSO unless `ethtool -K ... tso off`
    nstat_base: dict[str, int] | None = None  # counters at the last `nstat` (None: since the start)
    route: dict[str, int] = field(default_factory=dict)  # `ip route change`: advmss, mtu, initcwnd
    link_mtu: int | None = None  # `ip link set dev tun0 mtu N`: the device's MTU, which sizes the MSS offered
    qdisc: str = "pfifo"  # the device's qdisc: "fq" paces each flow
    files: Files = field(default_factory=Files)  # what `dd` wrote (files.py)


def interpret(command: str, host: Host, counters: dict[str, int]) -> None:
    """Apply one backquoted block to `host`; raise ShellSkip for what is not understood, and
    AssertionError when an `nstat | grep` check fails (packetdrill fails on a non-zero exit status)."""
    for raw in _commands(command):
        line = _REDIRECT.sub("", raw).strip()
        if line.endswith("|| true"):
            line = line[: -len("|| true")].strip()
        if not line or _NO_OP.match(line):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            raise ShellSkip(f"shell command not in the vocabulary: `{raw}`") from None
        name = words[0].rsplit("/", 1)[-1]
        if name == "defaults.sh":
            host.sysctls.update(LINUX_DEFAULTS)
            if words[0].endswith("common/defaults.sh"):
                host.sysctls["tcp_fastopen"] = GTESTS_FAST_OPEN
        elif name == "sysctl":
            _sysctl(words[1:], host, raw)
        elif name == "set_sysctls.py":
            for word in words[1:]:
                _set(word.removeprefix("/proc/sys/"), host, raw)
        elif name == "echo":
            _module_parameter(words[1:], host, raw)
        elif name == "ethtool":
            _ethtool(words[1:], host, raw)
        elif name == "tc":
            _tc(words[1:], host, raw)
        elif name == "nstat":
            _nstat(line, host, counters, raw)
        elif name == "rm" and words[1:2] == ["-f"]:
            for path in words[2:]:
                host.files.remove(path)
        elif name == "dd":
            _dd(words[1:], host, raw)
        elif name == "ip" and words[1:3] in (["route", "change"], ["route", "replace"], ["-6", "route"]):
            _route(words[1:], host, raw)
        elif name == "ip" and words[1:3] == ["link", "set"]:
            _link(words[3:], host, raw)
        else:
            raise ShellSkip(f"shell command not in the vocabulary: `{raw}`")


def _commands(text: str) -> list[str]:
    """Lines and `;`-separated commands, with `\\` continuations joined, `#` comments removed and
    `$((...))` arithmetic expanded."""
    text = _ARITHMETIC.sub(_expand, text.replace("\\\n", " "))
    out: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0] if not line.lstrip().startswith("#!") else ""
        out += [part.strip() for part in line.split(";") if part.strip()]
    return out


_ARITHMETIC = re.compile(r"\$\(\(([^()]*(?:\([^()]*\)[^()]*)*)\)\)")


def _divide(left: int, right: int) -> int:
    """The shell's (C's) integer division, which truncates toward zero: $((-7/2)) is -3."""
    quotient = abs(left) // abs(right)
    return quotient if (left < 0) == (right < 0) else -quotient


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: _divide}


def _expand(match: re.Match[str]) -> str:
    """`$((15*1024*1024))` as the shell computes it: integers and + - * / only (the selftests' sizes)."""
    if len(match.group(1)) > MAX_ARITHMETIC:  # a deeply nested expression must not exhaust the parser
        raise ShellSkip(f"shell arithmetic too long: `{match.group(0)[:40]}...`")
    try:
        tree = ast.parse(match.group(1).replace("/", "//"), mode="eval")
    except SyntaxError:
        raise ShellSkip(f"shell arithmetic not in the vocabulary: `{match.group(0)}`") from None
    return str(_evaluate(tree.body, match.group(0)))


def _evaluate(node: ast.expr, text: str) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, text)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left, text), _evaluate(node.right, text)
        if isinstance(node.op, ast.FloorDiv) and right == 0:
            raise ShellSkip(f"division by zero in `{text}`")
        if abs(left) > 1 << 64 or abs(right) > 1 << 64:
            raise ShellSkip(f"shell arithmetic out of range: `{text}`")
        return _OPERATORS[type(node.op)](left, right)
    raise ShellSkip(f"shell arithmetic not in the vocabulary: `{text}`")


def _sysctl(args: list[str], host: Host, raw: str) -> None:
    settings = [a for a in args if not a.startswith("-")]
    if not settings or any("=" not in a for a in settings):
        raise ShellSkip(f"sysctl without NAME=VALUE: `{raw}`")
    for setting in settings:
        _set(setting, host, raw)


def _set(setting: str, host: Host, raw: str) -> None:
    key, _, value = setting.partition("=")
    key = key.replace("/", ".")
    if not key.startswith("net.ipv4.") or not value:
        raise ShellSkip(f"sysctl {key} is not a TCP setting tcpstack models: `{raw}`")
    host.sysctls[key.removeprefix("net.ipv4.")] = value.strip("\"'")


_MODULE_PARAMETER = re.compile(r"/sys/module/(tcp_cubic)/parameters/(\w+)$")


def _module_parameter(args: list[str], host: Host, raw: str) -> None:
    """`echo V > /sys/module/tcp_cubic/parameters/NAME`: kept as the setting `tcp_cubic.NAME` (sysctls.py)."""
    match = _MODULE_PARAMETER.match(args[2]) if len(args) == 3 and args[1] == ">" else None
    if match is None:
        raise ShellSkip(f"shell command not in the vocabulary: `{raw}`")
    host.sysctls[f"{match.group(1)}.{match.group(2)}"] = args[0]


def _dd(args: list[str], host: Host, raw: str) -> None:
    """`dd bs=1 count=5 if=/dev/zero of=/tmp/NAME`: a file of bs * count zero bytes (files.py)."""
    operands = dict(arg.partition("=")[::2] for arg in args)
    if set(operands) - {"bs", "count", "if", "of", "status"} or operands.get("if") != "/dev/zero":
        raise ShellSkip(f"dd other than from /dev/zero: `{raw}`")
    if not operands.get("bs", "").isdigit() or not operands.get("count", "").isdigit() or "of" not in operands:
        raise ShellSkip(f"dd without a size in bytes and a file: `{raw}`")
    try:
        host.files.create(operands["of"], int(operands["bs"]) * int(operands["count"]))
    except ValueError as exc:
        raise ShellSkip(f"dd of {exc}: `{raw}`") from None


def _route(args: list[str], host: Host, raw: str) -> None:
    """`ip [-6] route change DEST via GW dev tun0 advmss N mtu [lock] N initcwnd N`: the route to the
    script's remote end (there is only one), its MSS to offer, path MTU and initial window (RFC 6928)."""
    if args[0] == "-6":
        args = args[1:]
    if args[:2] not in (["route", "change"], ["route", "replace"]) or len(args) < 3:
        raise ShellSkip(f"ip route other than change/replace: `{raw}`")
    words = args[3:]
    i = 0
    while i < len(words):
        key = words[i]
        if key in ("via", "dev") and i + 1 < len(words):
            i += 2
            continue
        value = words[i + 1] if i + 1 < len(words) else ""
        if key == "mtu" and value == "lock":  # locked: no path MTU discovery changes it, none does here
            i += 1
            value = words[i + 1] if i + 1 < len(words) else ""
        if key not in ("advmss", "mtu", "initcwnd") or not value.isdigit():
            raise ShellSkip(f"route attribute not modelled: `{raw}`")
        host.route[key] = int(value)
        i += 2


def _link(args: list[str], host: Host, raw: str) -> None:
    """`ip link set [dev] tun0 mtu N`: the MTU of packetdrill's device, the one link the script's packets
    cross (any other attribute SKIPs)."""
    if args[:1] == ["dev"]:
        args = args[1:]
    if len(args) != 3 or args[1] != "mtu" or not args[2].isdigit():
        raise ShellSkip(f"ip link attribute not modelled: `{raw}`")
    mtu = int(args[2])
    if mtu < 128:  # an MSS below Linux's floor (TCP_MIN_MSS, 88), as the runner's --mtu
        raise ShellSkip(f"ip link mtu below what TCP can use: `{raw}`")
    host.link_mtu = mtu


def _ethtool(args: list[str], host: Host, raw: str) -> None:
    if len(args) < 4 or args[0] != "-K":
        raise ShellSkip(f"ethtool other than -K: `{raw}`")
    pairs = dict(zip(args[2::2], args[3::2], strict=False))
    if set(pairs) - {"tso", "gso", "gro"} or set(pairs.values()) - {"on", "off"}:
        raise ShellSkip(f"ethtool offload not modelled: `{raw}`")
    if "tso" in pairs:
        host.tso = pairs["tso"] == "on"


def _tc(args: list[str], host: Host, raw: str) -> None:
    """A FIFO qdisc is what the stack already is, and one of no room drops every packet locally; a plain
    fq paces each flow (stack/tcp/pacing.py); a short FIFO, fq's own parameters and any other qdisc are
    behaviours not modelled."""
    if args[:1] != ["qdisc"]:
        raise ShellSkip(f"tc other than qdisc: `{raw}`")
    if len(args) > 1 and args[1] in ("del", "delete"):
        host.qdisc = "pfifo"
        return
    if args[-1:] == ["fq"] and args[1:2] in (["add"], ["replace"], ["change"]) and "root" in args:
        host.qdisc = "fq"
        return
    if "pfifo" in args or "pfifo_fast" in args:
        limit = args[args.index("limit") + 1] if "limit" in args[:-1] else None
        if limit == "0":  # no room at all: every packet is dropped locally
            host.qdisc = "drop"
            return
        if limit is not None and (not limit.isdigit() or int(limit) < FIFO_UNLIMITED):
            # a short queue drops locally what a burst brings beyond it (Linux then probes for resources)
            raise ShellSkip(f"a qdisc that drops packets locally is not modelled: `{raw}`")
        host.qdisc = "pfifo"
        return
    raise ShellSkip(f"qdisc not modelled: `{raw}`")


def _nstat(line: str, host: Host, counters: dict[str, int], raw: str) -> None:
    """`nstat` and `nstat -n` reset the baseline; `nstat -s` leaves it. Piped into `grep NAME` it succeeds
    only if NAME grew since the baseline (nstat prints only counters that changed, under Linux's names:
    TcpExtTCPTimeouts, TcpRetransSegs), and a further `grep -q " N "` only if it grew by exactly N."""
    stages = [s.strip() for s in line.split("|")]
    if stages[0] not in ("nstat", "nstat -n", "nstat -s"):
        raise ShellSkip(f"nstat options not modelled: `{raw}`")
    base = host.nstat_base or {}
    if len(stages) > 1:
        words = shlex.split(stages[1])
        if words[:1] != ["grep"] or len(words) != 2:
            raise ShellSkip(f"nstat output filter not modelled: `{raw}`")
        name = words[1]
        ours = re.sub(r"^(TcpExt|Tcp)", "", name)
        if ours not in counters and name not in counters:
            raise ShellSkip(f"counter {name} is not kept by tcpstack: `{raw}`")
        grown = counters.get(ours, counters.get(name, 0)) - base.get(ours, base.get(name, 0))
        if grown <= 0:
            raise AssertionError(f"`{raw}`: {name} did not grow since the last nstat")
        for stage in stages[2:]:
            _nstat_value_check(shlex.split(stage), name, grown, raw)
    if stages[0] != "nstat -s":
        host.nstat_base = dict(counters)


def _nstat_value_check(words: list[str], name: str, grown: int, raw: str) -> None:
    """`grep -q " 3 "` on nstat's line `TcpExtBeyondWindow   3   0.0`: the counter grew by 3."""
    if words[:2] != ["grep", "-q"] or len(words) != 3 or not words[2].strip().isdigit():
        raise ShellSkip(f"nstat output filter not modelled: `{raw}`")
    if grown != int(words[2]):
        raise AssertionError(f"`{raw}`: {name} grew by {grown}, not {int(words[2])}")

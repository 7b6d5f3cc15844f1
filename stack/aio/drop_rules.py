"""Targeted drop rules for `--fault`: lose chosen TCP segments by their flags, not by chance.

`drop=KIND[,dir=in|out][,port=N][,skip=N][,count=N]` drops the segments of one kind: `syn` (SYN without
ACK), `synack`, `ack` (a pure ACK: no SYN, FIN, RST or data), `fin`, `rst`, `data` (any payload) or
`any`. `dir=in` means toward the stack, `dir=out` from it (default both); `port` matches either port;
of the matching segments the first `skip` pass, then `count` are dropped (default: all of them).
Each rule counts on its own, so `drop=ack,count=1,drop=ack,skip=2,count=1` loses the first and the
third pure ACK. With these, the states that otherwise need iptables or a crafted peer can be produced
against any kernel: SYN_RECV (lose the handshake's last ACK), LAST_ACK (lose the ACK of the FIN), ...
"""

from __future__ import annotations

from dataclasses import dataclass, replace

KINDS = ("syn", "synack", "ack", "fin", "rst", "data", "any")
RULE_KEYS = ("dir", "port", "skip", "count")
_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
_TCP = 6


@dataclass(frozen=True, slots=True)
class DropRule:
    kind: str
    direction: str | None = None  # "in" (toward the stack), "out", or None for both
    port: int | None = None
    skip: int = 0
    count: int | None = None  # None: every match after `skip`

    def __str__(self) -> str:
        parts = [f"drop={self.kind}"]
        if self.direction is not None:
            parts.append(f"dir={self.direction}")
        for key in ("port", "skip", "count"):
            value = getattr(self, key)
            if value is not None and (key != "skip" or value):
                parts.append(f"{key}={value}")
        return ",".join(parts)

    def with_option(self, key: str, raw: str) -> DropRule:
        """This rule with `key=raw` (one of RULE_KEYS) set; ValueError naming the problem."""
        if key == "dir":
            if raw not in ("in", "out"):
                raise ValueError(f"fault dir={raw!r}: expected in (toward the stack) or out")
            return replace(self, direction=raw)
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"fault {key}={raw!r}: expected a whole number") from None
        low, high = (1, 65535) if key == "port" else (0, 1_000_000_000)
        if not low <= value <= high:
            raise ValueError(f"fault {key}={raw!r}: must be between {low} and {high}")
        return replace(self, **{key: value})


def new_rule(raw: str) -> DropRule:
    if raw not in KINDS:
        raise ValueError(f"fault drop={raw!r}: expected one of {', '.join(KINDS)}")
    return DropRule(raw)


def segment_kinds(packet: bytes) -> tuple[frozenset[str], int, int] | None:
    """(kinds this IPv4/TCP packet is, source port, destination port), or None for anything else."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != _TCP:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if int.from_bytes(packet[6:8], "big") & 0x1FFF or len(packet) < ihl + 20:
        return None  # a later fragment carries no TCP header
    tcp = packet[ihl:]
    flags = tcp[13]
    payload = int.from_bytes(packet[2:4], "big") - ihl - (tcp[12] >> 4) * 4
    kinds = {"any"}
    if flags & _SYN:
        kinds.add("synack" if flags & _ACK else "syn")
    if flags & _FIN:
        kinds.add("fin")
    if flags & _RST:
        kinds.add("rst")
    if payload > 0:
        kinds.add("data")
    elif flags & _ACK and not flags & (_SYN | _FIN | _RST):
        kinds.add("ack")
    return frozenset(kinds), int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[2:4], "big")


class DropRules:
    """The rules of one stack with their running counts, shared by both directions."""

    def __init__(self, rules: tuple[DropRule, ...]) -> None:
        self.rules = rules
        self._seen = [0] * len(rules)
        self._dropped = [0] * len(rules)

    def drops(self, packet: bytes, direction: str) -> bool:
        """Whether some rule drops `packet` going `direction` ("in" or "out"); every matching rule counts it."""
        parsed = segment_kinds(packet)
        if parsed is None:
            return False
        kinds, sport, dport = parsed
        drop = False
        for i, rule in enumerate(self.rules):
            if rule.kind not in kinds or rule.direction not in (None, direction):
                continue
            if rule.port is not None and rule.port not in (sport, dport):
                continue
            self._seen[i] += 1
            if self._seen[i] > rule.skip and (rule.count is None or self._dropped[i] < rule.count):
                self._dropped[i] += 1
                drop = True
        return drop

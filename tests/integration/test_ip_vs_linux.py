"""The IP layers against Linux's: ICMP and ICMPv6 echo, timestamps, errors, extension headers, fragments and
neighbour solicitations, each crafted packet sent to the kernel and to tcpstack, and their answers compared
field by field (type and code, the rest of the header, what an answer carries back or quotes, TTL or hop
limit, TOS or traffic class, DF, whether a flow label is set, how a large reply is fragmented, IPv4
options), except where docs/linux-differences.md says why not; then the limits on ICMP errors to one
source, reassembly that times out, a Packet Too Big about an echo reply, and the record route and
timestamp options TCP sends back.

The peers are those of the shapes test (tests/integration/shapes.py): the kernel behind a TUN device in a
private namespace (for the probes, its ICMP rate limits lifted so that it answers every one) and tcpstack
on a socketpair. Each probe comes from an address of its own, so all are sent at once and the answers told
apart by whom they go to.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption, IPOption_RR, fragment
from scapy.layers.inet6 import (
    HBHOptUnknown,
    ICMPv6EchoRequest,
    ICMPv6ND_NS,
    ICMPv6PacketTooBig,
    ICMPv6Unknown,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    PadN,
    fragment6,
)

from stack.fragments import FragmentLimits
from stack.ip import ms_since_midnight
from stack.tcp.config import TcpConfig
from tests.integration.shapes import HOST, HOST6, LISTEN_PORT, KernelPeer, StackPeer, from_ports, side_by_side

WAIT = 0.5  # seconds for the answers: both send them at once
DATA = bytes(range(56))
LONG = bytes(range(256)) * 12
KERNEL_SYSCTLS = ("net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_msgs_per_sec=100000", "net.ipv6.icmp.ratelimit=0")

Probe = Callable[[str], list]  # the packets of one probe, from the source given


def _echo4(src: str, **ip) -> IP:
    return IP(src=src, dst=HOST, **ip) / ICMP(id=7, seq=1) / DATA


def _fragments4(src: str) -> list:
    return fragment(IP(src=src, dst=HOST, id=4242) / ICMP(id=7, seq=1) / LONG[:3000], 1480)


def _overlapping4(src: str) -> list:
    first = bytes(ICMP(id=7, seq=1) / (b"\x33" * 40))[:24]
    return [
        IP(src=src, dst=HOST, id=777, flags="MF", frag=0, proto=1) / first,
        IP(src=src, dst=HOST, id=777, flags="MF", frag=2, proto=1) / (b"\x44" * 16),  # bytes 16 to 31 again
        IP(src=src, dst=HOST, id=777, frag=3, proto=1) / (b"\x55" * 24),
    ]


def _prespecified(first: str, second: str) -> IPOption:
    """A timestamp option naming the two hops that are to fill in its entries (RFC 791 §3.1, flag 3)."""
    entries = b"".join(socket.inet_aton(address) + bytes(4) for address in (first, second))
    return IPOption(bytes.fromhex("44140503") + entries)


def _trailing4(src: str) -> list:
    return [bytes(_echo4(src)) + b"\xde\xad\xbe\xef"]  # beyond the total length: not part of the datagram


def _bad_ip_checksum(src: str) -> list:
    raw = bytearray(bytes(_echo4(src)))
    raw[10:12] = b"\x12\x34"
    return [bytes(raw)]


PROBES4: dict[str, Probe] = {
    "echo": lambda s: [_echo4(s)],
    "echo with code 1": lambda s: [IP(src=s, dst=HOST) / ICMP(id=7, seq=1, code=1) / DATA],
    "echo with a bad checksum": lambda s: [IP(src=s, dst=HOST) / ICMP(id=7, seq=1, chksum=0x1234) / DATA],
    "echo with TOS 0x10": lambda s: [_echo4(s, tos=0x10)],
    "echo with ECT(0)": lambda s: [_echo4(s, tos=0x02)],
    "echo with TTL 1": lambda s: [_echo4(s, ttl=1)],
    "echo with DF": lambda s: [_echo4(s, flags="DF")],
    "echo with a record route": lambda s: [_echo4(s, options=[IPOption_RR(routers=["0.0.0.0"] * 3)])],
    "echo with a full record route": lambda s: [_echo4(s, options=[IPOption_RR(pointer=8, routers=["1.2.3.4"])])],
    "echo with room for one route": lambda s: [
        _echo4(s, options=[IPOption_RR(pointer=8, routers=["1.2.3.4", "0.0.0.0"])])
    ],
    "echo with timestamps": lambda s: [_echo4(s, options=[IPOption(bytes.fromhex("44100500") + bytes(12))])],
    "echo with a full timestamp option": lambda s: [
        _echo4(s, options=[IPOption(bytes.fromhex("44080900") + bytes(4))])
    ],
    "echo with timestamps and addresses": lambda s: [
        _echo4(s, options=[IPOption(bytes.fromhex("44140501") + bytes(16))])
    ],
    "echo with our address prespecified": lambda s: [_echo4(s, options=[_prespecified(HOST, "1.2.3.4")])],
    "echo with another address prespecified": lambda s: [_echo4(s, options=[_prespecified("1.2.3.4", HOST)])],
    "echo of 1472 bytes with a record route": lambda s: [
        IP(src=s, dst=HOST, options=[IPOption_RR(routers=["0.0.0.0"] * 3)]) / ICMP(id=7, seq=1) / LONG[:1472]
    ],
    "echo of 1472 bytes": lambda s: [IP(src=s, dst=HOST) / ICMP(id=7, seq=1) / LONG[:1472]],
    "echo of no data": lambda s: [IP(src=s, dst=HOST) / ICMP(id=7, seq=1)],
    "echo of 3000 bytes in fragments": _fragments4,
    "echo with bytes beyond its length": _trailing4,
    "echo with a bad IP checksum": _bad_ip_checksum,
    "echo in overlapping fragments": _overlapping4,
    "echo to the subnet's broadcast address": lambda s: [IP(src=s, dst="10.8.0.255") / ICMP(id=7, seq=1) / DATA],
    "echo to the limited broadcast address": lambda s: [IP(src=s, dst="255.255.255.255") / ICMP(id=7, seq=1) / DATA],
    "echo to a multicast group": lambda s: [IP(src=s, dst="224.0.0.1", ttl=1) / ICMP(id=7, seq=1) / DATA],
    "echo from our own address": lambda s: [IP(src=HOST, dst=HOST) / ICMP(id=8, seq=1) / DATA],
    "echo from a loopback address": lambda s: [IP(src="127.0.0.1", dst=HOST) / ICMP(id=9, seq=1) / DATA],
    "timestamp request": lambda s: [
        IP(src=s, dst=HOST) / ICMP(type=13, id=7, seq=1, ts_ori=12345678, ts_rx=0, ts_tx=0)
    ],
    "information request": lambda s: [IP(src=s, dst=HOST) / ICMP(type=15, id=7, seq=1)],
    "address mask request": lambda s: [IP(src=s, dst=HOST) / ICMP(type=17, id=7, seq=1) / bytes(4)],
    "extended echo request": lambda s: [IP(src=s, dst=HOST) / ICMP(type=42, id=7, seq=1) / b"\x20\0\0\0"],
    "echo reply": lambda s: [IP(src=s, dst=HOST) / ICMP(type=0, id=7, seq=1) / DATA],
    "unknown ICMP type": lambda s: [IP(src=s, dst=HOST) / ICMP(type=99, id=7, seq=1) / DATA],
    "port unreachable about nothing we sent": lambda s: [
        IP(src=s, dst=HOST) / ICMP(type=3, code=3) / bytes(IP(src=HOST, dst=s) / UDP(sport=1, dport=2))
    ],
    "protocol 253": lambda s: [IP(src=s, dst=HOST, proto=253) / (b"\x11" * 8)],
    "protocol 253 with TOS 0x12": lambda s: [IP(src=s, dst=HOST, proto=253, tos=0x12) / (b"\x11" * 8)],
    "protocol 253 of 600 bytes": lambda s: [IP(src=s, dst=HOST, proto=253) / LONG[:600]],
    "protocol 253 with a record route": lambda s: [
        IP(src=s, dst=HOST, proto=253, options=[IPOption_RR(routers=["0.0.0.0"] * 3)]) / (b"\x11" * 8)
    ],
    "protocol 253 in fragments": lambda s: fragment(IP(src=s, dst=HOST, proto=253, id=99) / (b"\x22" * 64), 32),
    "UDP": lambda s: [IP(src=s, dst=HOST) / UDP(sport=5555, dport=9) / b"hello"],
    "UDP with a bad checksum": lambda s: [IP(src=s, dst=HOST) / UDP(sport=5555, dport=9, chksum=0x1234) / b"hello"],
}


def _echo6(src: str, dst: str = HOST6, data: bytes = DATA, **ip) -> IPv6:
    return IPv6(src=src, dst=dst, **ip) / ICMPv6EchoRequest(id=7, seq=1, data=data)


def _behind(header, dst: str = HOST6) -> Probe:
    """An echo request behind an extension header."""
    return lambda s: [IPv6(src=s, dst=dst) / header / ICMPv6EchoRequest(id=7, seq=1, data=DATA)]


def _option(header, kind: int, dst: str = HOST6) -> Probe:
    return _behind(header(options=[HBHOptUnknown(otype=kind, optdata=bytes(4))]), dst)


def _routing(kind: int, left: int) -> Probe:
    return _behind(IPv6ExtHdrRouting(type=kind, segleft=left, addresses=["fd00:8::99"]))


def _fragments6(src: str) -> list:
    whole = IPv6(src=src, dst=HOST6) / IPv6ExtHdrFragment(id=4242) / ICMPv6EchoRequest(id=7, seq=1, data=LONG[:3000])
    return fragment6(whole, 1280)


def _overlapping6(src: str) -> list:
    first = bytes(_echo6(src, data=b"\x33" * 40))[40:64]
    return [
        IPv6(src=src, dst=HOST6) / IPv6ExtHdrFragment(id=11, m=1, offset=0, nh=58) / first,
        IPv6(src=src, dst=HOST6) / IPv6ExtHdrFragment(id=11, m=1, offset=2, nh=58) / (b"\x44" * 16),
        IPv6(src=src, dst=HOST6) / IPv6ExtHdrFragment(id=11, m=0, offset=3, nh=58) / (b"\x55" * 24),
    ]


def _short_fragment(src: str) -> list:
    echo = bytes(_echo6(src, data=b"\x66" * 20))[40:53]  # not a multiple of 8, more to come
    return [IPv6(src=src, dst=HOST6) / IPv6ExtHdrFragment(id=9, m=1, offset=0, nh=58) / echo]


def _headless_fragment(src: str) -> list:
    options = bytes(IPv6ExtHdrDestOpt(nh=58, options=[PadN(optdata=bytes(4))]))  # the ICMPv6 header comes later
    return [IPv6(src=src, dst=HOST6) / IPv6ExtHdrFragment(id=10, m=1, offset=0, nh=60) / options]


PROBES6: dict[str, Probe] = {
    "echo": lambda s: [_echo6(s)],
    "echo with code 1": lambda s: [IPv6(src=s, dst=HOST6) / ICMPv6EchoRequest(code=1, id=7, seq=1, data=DATA)],
    "echo with a bad checksum": lambda s: [
        IPv6(src=s, dst=HOST6) / ICMPv6EchoRequest(id=7, seq=1, data=DATA, cksum=0x1234)
    ],
    "echo with traffic class 0x10": lambda s: [_echo6(s, tc=0x10)],
    "echo with a flow label": lambda s: [_echo6(s, fl=12345)],
    "echo with hop limit 0": lambda s: [_echo6(s, hlim=0)],
    "echo of 1452 bytes": lambda s: [_echo6(s, data=LONG[:1452])],
    "echo of 3000 bytes in fragments": _fragments6,
    "echo as an atomic fragment": _behind(IPv6ExtHdrFragment(id=5)),
    "echo in overlapping fragments": _overlapping6,
    "echo to all nodes": lambda s: [_echo6(s, dst="ff02::1")],
    "echo to interface-local all nodes": lambda s: [_echo6(s, dst="ff01::1")],
    "echo to our solicited-node group": lambda s: [_echo6(s, dst="ff02::1:ff00:1")],
    "echo to another group": lambda s: [_echo6(s, dst="ff02::1:ff00:99")],
    "echo with bytes beyond its length": lambda s: [bytes(_echo6(s)) + b"\xde\xad"],
    "echo from our own address": lambda s: [_echo6(HOST6)],
    "echo from a multicast address": lambda s: [_echo6("ff02::1")],
    "echo from the loopback address": lambda s: [_echo6("::1")],
    "echo longer than its payload length": lambda s: [_echo6(s, plen=200)],
    "echo after hop-by-hop padding": _behind(IPv6ExtHdrHopByHop(options=[PadN(optdata=bytes(4))])),
    **{f"hop-by-hop option {kind:#x}": _option(IPv6ExtHdrHopByHop, kind) for kind in (0x1E, 0x5E, 0x9E, 0xDE)},
    **{f"destination option {kind:#x}": _option(IPv6ExtHdrDestOpt, kind) for kind in (0x1E, 0x5E, 0x9E, 0xDE)},
    **{
        f"destination option {kind:#x} to all nodes": _option(IPv6ExtHdrDestOpt, kind, "ff02::1")
        for kind in (0x9E, 0xDE)
    },
    "hop-by-hop after destination options": _behind(IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop()),
    "routing type 0, no segments left": _routing(0, 0),
    "routing type 0, a segment left": _routing(0, 1),
    "routing type 2, a segment left": _routing(2, 1),
    "segment routing, no segments left": _routing(4, 0),
    "segment routing, a segment left": _routing(4, 1),
    "routing type 200, no segments left": _routing(200, 0),
    "next header 253": lambda s: [IPv6(src=s, dst=HOST6, nh=253) / (b"\x11" * 8)],
    "next header 253 of 1300 bytes": lambda s: [IPv6(src=s, dst=HOST6, nh=253) / LONG[:1300]],
    "no next header": lambda s: [IPv6(src=s, dst=HOST6, nh=59) / (b"\x11" * 8)],
    "destination options, then no next header": lambda s: [IPv6(src=s, dst=HOST6) / IPv6ExtHdrDestOpt(nh=59)],
    "a fragment of 13 bytes with more to come": _short_fragment,
    "a first fragment without the upper-layer header": _headless_fragment,
    "unknown informational message": lambda s: [IPv6(src=s, dst=HOST6) / ICMPv6Unknown(type=200, msgbody=bytes(8))],
    "unknown error message": lambda s: [IPv6(src=s, dst=HOST6) / ICMPv6Unknown(type=100, msgbody=bytes(8))],
    "neighbour solicitation": lambda s: [IPv6(src=s, dst=HOST6, hlim=255) / ICMPv6ND_NS(tgt=HOST6)],
    "neighbour solicitation to the solicited-node group": lambda s: [
        IPv6(src=s, dst="ff02::1:ff00:1", hlim=255) / ICMPv6ND_NS(tgt=HOST6)
    ],
    "neighbour solicitation to all nodes": lambda s: [IPv6(src=s, dst="ff02::1", hlim=255) / ICMPv6ND_NS(tgt=HOST6)],
    "neighbour solicitation with hop limit 64": lambda s: [IPv6(src=s, dst=HOST6, hlim=64) / ICMPv6ND_NS(tgt=HOST6)],
    "neighbour solicitation for another address": lambda s: [
        IPv6(src=s, dst=HOST6, hlim=255) / ICMPv6ND_NS(tgt="fd00:8::99")
    ],
    "UDP": lambda s: [IPv6(src=s, dst=HOST6) / UDP(sport=5555, dport=9) / b"hello"],
}

# where tcpstack answers otherwise, and why (docs/linux-differences.md): the probe, and what tcpstack answers
KNOWN_DIFFERENCES = {
    # tcpstack has no UDP: protocol unreachable (a parameter problem over IPv6) where Linux has a closed port
    ("v4", "UDP"): "icmp 3/2",
    ("v4", "UDP with a bad checksum"): "icmp 3/2",
    ("v6", "UDP"): "icmp6 4/1",
}


def _source(v6: bool, index: int) -> str:
    return f"fd00:8::{0x100 + index:x}" if v6 else f"10.8.0.{10 + index}"


def _describe(raw: bytes) -> str:
    """An answer as the fields the two stacks must agree on (not the IP identification, not a fragment's
    identification or the flow label's value, which are each stack's own draws)."""
    if raw[0] >> 4 == 4:
        ip = IP(raw)
        head = f"ttl={ip.ttl} tos={ip.tos:#x} df={int(bool(ip.flags.DF))} len={ip.len}{_options(raw[20 : ip.ihl * 4])}"
        if ip.flags.MF or ip.frag:
            return f"{head} fragment at {ip.frag * 8} more={int(bool(ip.flags.MF))}"
        body = bytes(ip.payload)
        if ip.proto == 6:  # (what else a segment holds, the shapes test compares; PSH, which ends a GSO
            # packet, how long is the RTT's: the scripts compare it in virtual time)
            tcp = TCP(body)
            return f"{head} tcp {tcp.flags & ~0x08} carrying {len(bytes(tcp.payload))}"
        if ip.proto != 1:
            return f"{head} proto={ip.proto}"
        if body[0] == 14:  # timestamp reply: originate, then receive and transmit, each stack's own clock's
            received, sent = int.from_bytes(body[12:16], "big"), int.from_bytes(body[16:20], "big")
            late = (ms_since_midnight(time.time()) - received) % 86_400_000
            when = "now" if late < 5000 else f"{late} ms ago"
            return f"{head} icmp 14/{body[1]} {body[4:12].hex()} received {when}, sent {sent - received} ms later"
        return f"{head} icmp {body[0]}/{body[1]} {body[4:8].hex()} carrying {len(body) - 8}: {body[8:].hex()}"
    ip6 = IPv6(raw)
    head = f"hlim={ip6.hlim} tc={ip6.tc:#x} flow={'set' if ip6.fl else 0} plen={ip6.plen}"
    body = raw[40:]
    if ip6.nh == 44:
        return f"{head} fragment {body[0]} at {int.from_bytes(body[2:4], 'big') & ~7} more={body[3] & 1}"
    if ip6.nh != 58:
        return f"{head} nh={ip6.nh}"
    return f"{head} icmp6 {body[0]}/{body[1]} {body[4:8].hex()} carrying {len(body) - 8}: {body[8:].hex()}"


def _options(options: bytes) -> str:
    """IPv4 options, their addresses written out and each recorded time that is now (within 5 s) as "now"."""
    out, at = "", 0
    while at < len(options) and options[at] != 0:
        if options[at] == 1:
            at += 1
            continue
        kind, size, pointer = options[at], options[at + 1], options[at + 2]
        words = [options[i : i + 4] for i in range(at + 4 if kind == 68 else at + 3, at + size - 3, 4)]
        shown = [str(ipaddress.IPv4Address(word)) for word in words]
        if kind == 68:
            flags = options[at + 3]
            for i, word in enumerate(words):
                if (flags & 15 == 0 or i % 2) and word != bytes(4):
                    late = (ms_since_midnight(time.time()) - int.from_bytes(word, "big")) % 86_400_000
                    shown[i] = "now" if late < 5000 else f"{late} ms ago"
            out += f" timestamp(flags={flags:#x} pointer={pointer} {' '.join(shown)})"
        else:
            out += f" option {kind}(pointer={pointer} {' '.join(shown)})"
        at += size
    return out


def _answers(peer, probes: dict[str, Probe], v6: bool, wait: float = WAIT) -> dict[str, list[str]]:
    """Every probe at once, each from its own address; the answers (within `wait` seconds) by the probe
    they go back to."""
    sources = {_source(v6, i): name for i, name in enumerate(probes)}
    peer.receive(0.0)
    peer.send([bytes(pkt) for source, name in sources.items() for pkt in probes[name](source)])
    got: dict[str, list[str]] = {name: [] for name in probes}
    for raw in peer.receive(wait):
        to = IPv6(raw).dst if raw[0] >> 4 == 6 else IP(raw).dst
        if to.startswith("ff02:"):
            continue  # the kernel's own chatter on a new link (router solicitations, MLD reports)
        got.setdefault(sources.get(to, f"something to {to}"), []).append(_describe(raw))
    return {name: answers or ["none"] for name, answers in got.items()}


def _compare(kernel: KernelPeer, ours: StackPeer, probes: dict[str, Probe], v6: bool, wait: float = WAIT) -> None:
    theirs, mine = side_by_side(lambda peer: _answers(peer, probes, v6, wait), kernel, ours)
    family = "v6" if v6 else "v4"
    unexplained = {}
    for name in sorted(set(theirs) | set(mine)):
        linux, tcpstack = theirs.get(name, ["none"]), mine.get(name, ["none"])
        known = KNOWN_DIFFERENCES.get((family, name))
        if linux != tcpstack and not (known and all(known in answer for answer in tcpstack)):
            unexplained[name] = (linux, tcpstack)
    assert not unexplained, "\n".join(f"{n}:\n  Linux    {k}\n  tcpstack {o}" for n, (k, o) in unexplained.items())


def _kernel(netns, v6: bool) -> KernelPeer:
    kernel = KernelPeer(netns, v6=v6)
    for setting in KERNEL_SYSCTLS:  # an answer to every probe, not one per second per source
        netns.run(["sysctl", "-qw", setting], check=True)
    return kernel


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_ip_layer_every_probe_answered_as_linux_answers(netns, v6):
    """RFC 792, RFC 1122 §3.2.2, RFC 1812 §4.3.2 (what an error quotes, its precedence); RFC 8200 §4 and
    RFC 4443 (extension headers, fragments, echo to a group, Parameter Problem), RFC 4861 §7.2.4 (neighbour
    solicitations): every probe draws the answer Linux's draws, field by field."""
    kernel, ours = _kernel(netns, v6), StackPeer(v6=v6)
    try:
        _compare(kernel, ours, PROBES6 if v6 else PROBES4, v6)
    finally:
        kernel.close()
        ours.close()


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_ip_layer_errors_to_one_source_limited_as_linux_limits_them(netns, v6):
    """RFC 1812 §4.3.2.8, RFC 4443 §2.4 (f): with Linux's default limits (a burst of six errors to one
    destination, then one a second over IPv4 and one per 100 ms over IPv6), ten packets at once from one
    source that each call for an error draw as many errors from both stacks."""
    kernel, ours = KernelPeer(netns, v6=v6), StackPeer(v6=v6)
    source = _source(v6, 0)
    unknown = (IPv6(src=source, dst=HOST6, nh=253) if v6 else IP(src=source, dst=HOST, proto=253)) / bytes(8)

    def errors(peer) -> int:
        peer.receive(0.0)
        peer.send([bytes(unknown)] * 10)
        return sum(1 for raw in peer.receive(WAIT) if (IPv6(raw).dst if v6 else IP(raw).dst) == source)

    try:
        assert side_by_side(errors, kernel, ours) == (6, 6)
    finally:
        kernel.close()
        ours.close()


def _first_fragment(v6: bool, source: str) -> bytes:
    """The first of two fragments of an echo request (the second never comes)."""
    if v6:
        whole = IPv6(src=source, dst=HOST6) / IPv6ExtHdrFragment(id=31) / ICMPv6EchoRequest(id=7, data=LONG[:1500])
        return bytes(fragment6(whole, 1280)[0])
    return bytes(fragment(IP(src=source, dst=HOST, id=31) / ICMP(id=7, seq=1) / LONG[:1500], 1000)[0])


def _first_fragment_after_options(source: str) -> bytes:
    """The first of two fragments of an echo request whose unfragmentable part holds a destination options
    header (RFC 8200 §4.5: it comes before the fragment header, in every fragment)."""
    whole = (
        IPv6(src=source, dst=HOST6)
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrFragment(id=33)
        / ICMPv6EchoRequest(id=7, data=LONG[:1500])
    )
    return bytes(fragment6(whole, 1280)[0])


def _last_fragment(v6: bool, source: str) -> bytes:
    """The last of two fragments of an echo request (the first never comes)."""
    if v6:
        whole = IPv6(src=source, dst=HOST6) / IPv6ExtHdrFragment(id=32) / ICMPv6EchoRequest(id=7, data=LONG[:1500])
        return bytes(fragment6(whole, 1280)[-1])
    return bytes(fragment(IP(src=source, dst=HOST, id=32) / ICMP(id=7, seq=1) / LONG[:1500], 1000)[-1])


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_ip_layer_incomplete_datagram_timed_out_as_linux_times_it_out(netns, v6):
    """RFC 792, RFC 1122 §3.3.2, RFC 8200 §4.5: when reassembly gives up, the source of a datagram whose
    first fragment came is told so (time exceeded, code 1, quoting that fragment), and the source of one
    whose first fragment never came is not; both stacks given up after a second (Linux's ipfrag_time and
    ip6frag_time set to 1)."""
    kernel, ours = KernelPeer(netns, v6=v6), StackPeer(v6=v6)
    netns.run(["sysctl", "-qw", "net.ipv6.ip6frag_time=1" if v6 else "net.ipv4.ipfrag_time=1"], check=True)
    ours.stack.ip.fragments.limits = FragmentLimits(timeout=1.0)
    probes = {
        "first fragment only": lambda s: [_first_fragment(v6, s)],
        "last fragment only": lambda s: [_last_fragment(v6, s)],
    }
    if v6:
        probes["first fragment after options"] = lambda s: [_first_fragment_after_options(s)]
    try:
        _compare(kernel, ours, probes, v6, wait=3.0)
    finally:
        kernel.close()
        ours.close()


def test_ip_layer_packet_too_big_about_an_echo_reply_sizes_the_next_ones_as_linux(netns):
    """RFC 8201 §4, RFC 4443 §3.2: a Packet Too Big from a router about an echo reply of 1500 bytes lowers
    the path MTU to that destination, so the next reply there goes in fragments that fit it (a router
    cannot fragment it over IPv6) and one to another destination does not; as Linux's icmpv6_err."""
    kernel, ours = KernelPeer(netns, v6=True), StackPeer(v6=True)
    there, elsewhere = _source(True, 0), _source(True, 1)

    def replies(peer) -> list[list[str]]:
        def echo(source: str) -> list[bytes]:
            peer.receive(0.0)
            peer.send([bytes(_echo6(source, data=LONG[:1452]))])
            return [raw for raw in peer.receive(WAIT) if IPv6(raw).dst == source]

        first = echo(there)
        peer.send([bytes(IPv6(src="fd00:8::fe", dst=HOST6) / ICMPv6PacketTooBig(mtu=1280) / first[0][:1232])])
        return [[_describe(raw) for raw in answers] for answers in (first, echo(there), echo(elsewhere))]

    try:
        theirs, mine = side_by_side(replies, kernel, ours)
        assert [len(answers) for answers in theirs] == [1, 2, 1]
        assert mine == theirs
    finally:
        kernel.close()
        ours.close()


CLOSED_PORT = 9999
RECORD_ROUTE = IPOption_RR(routers=["0.0.0.0"] * 3)
TIMESTAMPS = IPOption(bytes.fromhex("44100500") + bytes(12))
SENT_BACK = {  # IPv4 options a segment may carry, and whether TCP sends them back (Linux's ip_options_echo)
    "a record route": [RECORD_ROUTE],
    "a full record route": [IPOption_RR(pointer=8, routers=["1.2.3.4"])],
    "timestamps": [TIMESTAMPS],
    "timestamps and addresses": [IPOption(bytes.fromhex("44140501") + bytes(16))],
    "a record route and timestamps": [
        IPOption_RR(routers=["0.0.0.0"] * 2),
        IPOption(bytes.fromhex("440c0500") + bytes(8)),
    ],
    "no-operations only": [IPOption(b"\x01\x01\x01\x01")],
}


def _segment(src: str, dport: int, flags: str, ip_options: list, **tcp) -> IP:
    return IP(src=src, dst=HOST, options=ip_options) / TCP(sport=40000, dport=dport, flags=flags, window=65535, **tcp)


def _syn(port: int, ip_options: list) -> Probe:
    return lambda s: [_segment(s, port, "S", ip_options)]


PROBES_TCP = {
    **{f"SYN with {name} to a listener": _syn(LISTEN_PORT, ip_options) for name, ip_options in SENT_BACK.items()},
    **{f"SYN with {name} to a closed port": _syn(CLOSED_PORT, ip_options) for name, ip_options in SENT_BACK.items()},
    "ACK with a record route to a listener": lambda s: [_segment(s, LISTEN_PORT, "A", [RECORD_ROUTE], seq=5, ack=7)],
    "RST with a record route to a closed port": lambda s: [_segment(s, CLOSED_PORT, "R", [RECORD_ROUTE], seq=5)],
}


def test_tcp_answers_send_ip_options_back_as_linux(netns):
    """RFC 1122 §4.2.3.8 (TCP MAY send the record route and timestamp options back; Linux does): a SYN,ACK
    or RST answering a segment with a record route or timestamp option carries it, with our address
    and the time recorded, as Linux's carries it; other options are not sent back."""
    kernel, ours = _kernel(netns, False), StackPeer()
    try:
        for peer in (kernel, ours):
            peer.listen(LISTEN_PORT)
        _compare(kernel, ours, PROBES_TCP, False)
    finally:
        kernel.close()
        ours.close()


def _opened(peer, port: int, data: bytes, syn_options: list, ack_options: list, timestamps: bool) -> list[bytes]:
    """A passive open on `port`, whose application writes `data`: a SYN with IP options `syn_options`, and
    once its SYN,ACK came, an ACK with `ack_options` (TCP timestamps on both, with `timestamps`); what came
    back until all of `data` did."""
    source = _source(False, 0)
    peer.serve(port, data)
    peer.receive(0.0)
    tcp = {"options": [("MSS", 1460), ("Timestamp", (1, 0))]} if timestamps else {}
    peer.send([bytes(_segment(source, port, "S", syn_options, seq=1000, **tcp))])
    got = peer.receive(2.0, until=from_ports([40000], 0x12))
    syn_ack = next(IP(raw) for raw in got if IP(raw).dst == source)
    tcp = {"options": [("Timestamp", (2, _tsval(syn_ack)))]} if timestamps else {}
    peer.send([bytes(_segment(source, port, "A", ack_options, seq=1001, ack=syn_ack[TCP].seq + 1, **tcp))])
    got += peer.receive(2.0, until=lambda packets: sum(len(IP(raw)[TCP].payload) for raw in packets) >= len(data))
    return [raw for raw in got if IP(raw).dst == source]


def _tsval(segment: IP) -> int:
    return dict(segment[TCP].options)["Timestamp"][0]


@pytest.mark.parametrize("options", ["a record route", "timestamps", "a record route and timestamps"])
def test_tcp_connection_opened_with_ip_options_sends_them_in_every_segment_as_linux(netns, options):
    """RFC 1122 §4.2.3.8, as Linux: a passive connection whose SYN carried a record route or timestamp
    option sends it back in its SYN,ACK and every segment after it (its time recorded as each leaves), and
    its segments are smaller by as much, so that they still fit the MTU; a segment without options later
    changes nothing."""
    kernel, ours = _kernel(netns, False), StackPeer()
    source, port = _source(False, 0), LISTEN_PORT + 1

    def connection(peer) -> list[str]:
        got = _opened(peer, port, bytes(range(250)) * 12, SENT_BACK[options], [], timestamps=True)
        last = IP(got[-1])[TCP]
        ack = last.seq + len(last.payload)
        reply = _segment(source, port, "PA", [], seq=1001, ack=ack, options=[("Timestamp", (3, _tsval(IP(got[0]))))])
        peer.send([bytes(reply / b"hello")])
        got += [raw for raw in peer.receive(WAIT) if IP(raw).dst == source]
        return [_describe(raw) for raw in got]

    try:
        theirs, mine = side_by_side(connection, kernel, ours)
        assert len(theirs) == 5  # the SYN,ACK, three segments of data, the ACK of ours
        assert mine == theirs
    finally:
        kernel.close()
        ours.close()


@pytest.mark.parametrize("ack_options", ["a record route", "no-operations only"])
def test_tcp_syn_cookie_connection_carries_the_options_of_its_ack_as_linux(netns, ack_options):
    """RFC 4987 §3.6, as Linux's cookie_v4_check: a connection a SYN cookie lets through is made from the
    ACK that completes it, and sends back the options that ACK carried (none if it carried none), whatever
    the SYN carried (its SYN,ACK sent them back). SYN cookies always on, in both stacks."""
    kernel, ours = _kernel(netns, False), StackPeer(config=TcpConfig(syncookies=2))
    netns.run(["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"], check=True)

    def connection(peer) -> list[str]:
        got = _opened(peer, LISTEN_PORT + 2, bytes(3000), SENT_BACK["a record route"], SENT_BACK[ack_options], False)
        return [_describe(raw) for raw in got]

    try:
        theirs, mine = side_by_side(connection, kernel, ours)
        assert len(theirs) >= 2  # the SYN,ACK and the data
        assert mine == theirs
    finally:
        kernel.close()
        ours.close()

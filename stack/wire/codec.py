"""Raw IPv4 and IPv6 packets <-> parsed values, via the C fast path (`stack._fast`, built by
native/build_fast.py). Addresses are the ints of stack/wire/addr.py (IPv6 ones carry bit 128)."""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from typing import Any, Final

from stack._fast import ffi, lib
from stack.wire.addr import MAX4, V6
from stack.wire.batch import PacketBatch, uncleared
from stack.wire.checksum import fill_ipv4_checksum
from stack.wire.reasons import DropReason
from stack.wire.segment import NO_OPTIONS, Segment, TcpOptions

PROTO_ICMP: Final = 1
PROTO_TCP: Final = 6
PROTO_ICMPV6: Final = 58
_M64: Final = (1 << 64) - 1
_MAX_PACKET: Final = 65535 + 40  # an IPv6 packet: its payload length (16 bits) counts after its 40-byte header
_FRAGMENT: Final = lib.FAST_FRAGMENT  # not a rejection: the IP fields are filled, the payload awaits reassembly


@dataclass(init=False, unsafe_hash=True, slots=True)
class TcpPacket:
    """An arriving TCP segment and the IP header fields the stack needs: one per arriving segment, built as
    Segment is (a dataclass with its constructor written out, which compiled code runs natively).
    `ip_header`: the IPv4 header with its options, for the rare segment that has any (b"" otherwise)."""

    src: Final[int]
    dst: Final[int]
    ttl: Final[int]
    segment: Final[Segment]
    ip_header: Final[bytes]

    def __init__(self, src: int, dst: int, ttl: int, segment: Segment, ip_header: bytes = b"") -> None:
        self.src = src
        self.dst = dst
        self.ttl = ttl
        self.segment = segment
        self.ip_header = ip_header


@dataclass(frozen=True, slots=True)
class IpPacket:
    """A valid IPv4 packet of another protocol (ICMP, UDP, ...), or a fragment of any protocol
    (`is_fragment`: its payload is a piece of a datagram for stack/fragments.py to reassemble).
    For IPv6 (src > MAX4): `header` is the 40-byte fixed header, `proto` its next header (maybe an
    extension header, for stack/ip6.py to walk), `ttl` the hop limit, `ident` 0, never `is_fragment`."""

    src: int
    dst: int
    proto: int
    ttl: int
    ident: int
    header: bytes
    payload: bytes
    frag_offset: int = 0  # in bytes (RFC 791 §3.1: the field counts 8-byte units)
    more_fragments: bool = False

    @property
    def is_fragment(self) -> bool:
        return self.more_fragments or self.frag_offset != 0


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: DropReason


def _layout() -> tuple[struct.Struct, dict[str, int]]:
    """The C parser's `struct fast_seg` as a struct.Struct, from cffi's own offsets (gaps as pad bytes),
    and where each field lands in what it unpacks: one C call reads every field, where reading them one
    by one through cffi costs a call each."""
    codes = {"uint8_t": "B", "uint16_t": "H", "uint32_t": "I", "uint64_t": "Q"}
    fmt, index, at, n = "=", {}, 0, 0
    for name, f in ffi.typeof("struct fast_seg").fields:
        array = f.type.kind == "array"
        count = f.type.length if array else 1
        fmt += "x" * (f.offset - at) + f"{count}{codes[(f.type.item if array else f.type).cname]}"
        index[name] = n
        n += count
        at = f.offset + ffi.sizeof(f.type)
    return struct.Struct(fmt + "x" * (ffi.sizeof("struct fast_seg") - at)), index


_LAYOUT: Final = _layout()
_SEG: Final = _LAYOUT[0]
_AT: Final = _LAYOUT[1]
_SEG_SIZE: Final = _SEG.size
_unpack_from: Final = _SEG.unpack_from
_pack_into: Final = _SEG.pack_into
# where each field lands in what _unpack_from returns
_VERSION: Final = _AT["version"]
_SRC: Final = _AT["src"]
_DST: Final = _AT["dst"]
_PROTO: Final = _AT["proto"]
_TTL: Final = _AT["ttl"]
_IDENT: Final = _AT["ident"]
_SRC6_HI: Final = _AT["src6_hi"]
_SRC6_LO: Final = _AT["src6_lo"]
_DST6_HI: Final = _AT["dst6_hi"]
_DST6_LO: Final = _AT["dst6_lo"]
_IHL: Final = _AT["ihl_bytes"]
_OFF: Final = _AT["payload_off"]
_LEN: Final = _AT["payload_len"]
_FRAG_OFF: Final = _AT["frag_off"]
_MORE: Final = _AT["more_frags"]
_SPORT: Final = _AT["sport"]
_DPORT: Final = _AT["dport"]
_SEQ: Final = _AT["seq"]
_ACK: Final = _AT["ack"]
_FLAGS: Final = _AT["flags"]
_WINDOW: Final = _AT["window"]
_URGENT: Final = _AT["urgent"]
_TOS: Final = _AT["tos"]
_MSS: Final = _AT["mss"]
_HAS_MSS: Final = _AT["has_mss"]
_WSCALE: Final = _AT["wscale"]
_HAS_WSCALE: Final = _AT["has_wscale"]
_SACK_PERMITTED: Final = _AT["sack_permitted"]
_HAS_TS: Final = _AT["has_ts"]
_TS_VAL: Final = _AT["ts_val"]
_TS_ECR: Final = _AT["ts_ecr"]
_SACK_COUNT: Final = _AT["sack_count"]
_SACK: Final = _AT["sack"]
_FO_KIND: Final = _AT["fo_kind"]
_FO_LEN: Final = _AT["fo_len"]
_FO_HI: Final = _AT["fo_hi"]
_FO_LO: Final = _AT["fo_lo"]


class _Scratch:
    """What the one-packet functions below fill: the C parser's and builder's descriptions and the output
    buffer. One per thread: cffi lets other threads run during each C call, so a shared one would mix
    two threads' packets."""

    __slots__ = ("parsed", "parsed_buf", "built", "built_buf", "header6", "out", "out_buf")

    def __init__(self) -> None:
        self.parsed: Any = ffi.new("struct fast_seg *")
        self.parsed_buf: Any = ffi.buffer(self.parsed)
        self.built: Any = ffi.new("struct fast_seg *")
        self.built_buf: Any = ffi.buffer(self.built)
        self.header6: Any = ffi.new("struct fast_seg *")  # addresses etc. for encode_ipv6 and checksum6
        self.out: Any = ffi.new("char[]", _MAX_PACKET)
        self.out_buf: Any = ffi.buffer(self.out)


_threads: Final = threading.local()


def _scratch() -> _Scratch:
    """This thread's _Scratch, made on its first use."""
    scratch = getattr(_threads, "scratch", None)
    if scratch is None:
        scratch = _threads.scratch = _Scratch()
    return scratch


def decode(buf: bytes, tcp_checksum: bool = True) -> TcpPacket | IpPacket | Rejected:
    """One raw IP packet, its checksums verified; `tcp_checksum=False` for one captured on a TUN device
    with offloads, whose TCP checksum may still be partial (left to the device)."""
    scratch = _scratch()
    rc = lib.fast_parse_csum(buf, len(buf), scratch.parsed, tcp_checksum)
    return _value(_unpack_from(scratch.parsed_buf), rc, bytes(buf), 0)


def _value(
    v: tuple[int, ...], rc: int, view: memoryview | bytes, base: int, gso: int = 0
) -> TcpPacket | IpPacket | Rejected:
    """The parsed value of the packet at view[base:] that the C parser described (`v`: its fields, as
    _SEG unpacks them) with result `rc`; `gso` the segment size of a coalesced TCP segment. A TCP payload
    is a slice of `view` (a view into a batch: no copy); other packets are copied out."""
    if rc:
        if rc == _FRAGMENT:
            off = base + v[_OFF]
            header = bytes(view[base : base + v[_IHL]])
            payload = bytes(view[off : off + v[_LEN]])
            return IpPacket(
                v[_SRC], v[_DST], v[_PROTO], v[_TTL], v[_IDENT], header, payload, v[_FRAG_OFF], bool(v[_MORE])
            )
        return Rejected(DropReason(rc))
    if v[_VERSION] == 6:
        src = V6 | v[_SRC6_HI] << 64 | v[_SRC6_LO]
        dst = V6 | v[_DST6_HI] << 64 | v[_DST6_LO]
    else:
        src = v[_SRC]
        dst = v[_DST]
    off = base + v[_OFF]
    end = off + v[_LEN]
    if v[_PROTO] != PROTO_TCP:
        header = bytes(view[base : base + v[_IHL]])
        return IpPacket(src, dst, v[_PROTO], v[_TTL], v[_IDENT], header, bytes(view[off:end]))
    if v[_HAS_MSS] or v[_HAS_WSCALE] or v[_SACK_PERMITTED] or v[_SACK_COUNT] or v[_FO_KIND]:
        sack = v[_SACK : _SACK + 2 * v[_SACK_COUNT]]
        options = TcpOptions(
            v[_MSS] if v[_HAS_MSS] else None,
            v[_WSCALE] if v[_HAS_WSCALE] else None,
            bool(v[_SACK_PERMITTED]),
            (v[_TS_VAL], v[_TS_ECR]) if v[_HAS_TS] else None,
            tuple(zip(sack[::2], sack[1::2], strict=True)),
            (v[_FO_HI] << 64 | v[_FO_LO]).to_bytes(16, "big")[: v[_FO_LEN]] if v[_FO_KIND] else None,
            v[_FO_KIND] == 254,
        )
    elif v[_HAS_TS]:  # nearly every segment
        options = TcpOptions(None, None, False, (v[_TS_VAL], v[_TS_ECR]))
    else:
        options = NO_OPTIONS
    seg = Segment(
        v[_SPORT],
        v[_DPORT],
        v[_SEQ],
        v[_ACK],
        v[_FLAGS],
        v[_WINDOW],
        view[off:end],
        options,
        v[_URGENT],
        v[_TOS] & 3,
        gso,
    )
    if v[_IHL] > 20 and v[_VERSION] == 4:  # IPv4 options: what TCP may have to send back (stack/ip_options.py)
        return TcpPacket(src, dst, v[_TTL], seg, bytes(view[base : base + v[_IHL]]))
    return TcpPacket(src, dst, v[_TTL], seg)


class BatchDecoder:
    """Parses a whole read batch in one C call; TCP payloads are views into the batch's buffer.

    With `gro`, a batch of wire-sized packets (no virtio_net_hdr) goes through software GRO in C first:
    adjacent segments of one flow that Linux's GRO would coalesce arrive as one super-segment (its
    `gso` the segment size), as a device with offloads hands them over. The payloads are moved together
    in the batch's buffer, which is why GRO is for batches nobody else reads afterwards."""

    def __init__(self, gro: bool = False) -> None:
        self.gro = gro
        self._grow(64)
        self.super_segments = 0  # coalesced super-segments the device handed over (with offloads)
        self.parts_beyond_first = 0  # the wire segments they held, beyond one each
        self.gro_segments = 0  # wire segments software GRO merged into the one before them
        self.acks_superseded = 0  # pure ACKs left out for a later one of the batch that says all they did

    def _grow(self, n: int) -> None:
        self._cap = n
        self._segs = ffi.new("struct fast_seg[]", n)
        self._fields = ffi.buffer(self._segs)
        self._reasons = ffi.new("uint8_t[]", n)
        self._gso = ffi.new("uint16_t[]", n)
        self._keep = ffi.new("int[]", n)
        self._acks = ffi.new("int *")

    def decode(self, batch: PacketBatch) -> list[TcpPacket | IpPacket | Rejected]:
        n = batch.n
        if n > self._cap:
            self._grow(n)
        segs, reasons, gso = self._segs, self._reasons, self._gso
        lib.fast_parse_batch(batch.buf, batch.offs, batch.lens, n, batch.vnet, segs, reasons, gso)
        view, offs, vnet = batch.view, batch.offs, batch.vnet
        fields, size = self._fields, _SEG_SIZE
        indices: range | list[int] = range(n)
        if self.gro and not vnet and n > 1:
            kept = lib.fast_gro_batch(batch.buf, offs, n, segs, reasons, gso, self._keep, self._acks)
            if kept < n:
                indices = ffi.unpack(self._keep, kept)
                acks = self._acks[0]
                self.acks_superseded += acks
                self.gro_segments += n - kept - acks
        out = []
        for i in indices:
            v = _unpack_from(fields, i * size)
            size_of = gso[i]  # a coalesced segment's segment size, as tcp_measure_rcv_mss reads gso_size
            out.append(_value(v, reasons[i], view, offs[i] + vnet, size_of))
            if size_of and vnet:
                self.super_segments += 1
                self.parts_beyond_first += (v[_LEN] - 1) // size_of
        return out


def _halves6(src: int, dst: int) -> tuple[int, int, int, int]:
    """Two IPv6 addresses as the C side holds them: each a high and a low 64-bit half."""
    return (src >> 64) & _M64, src & _M64, (dst >> 64) & _M64, dst & _M64


def _set_addresses6(b, src: int, dst: int) -> None:
    b.src6_hi, b.src6_lo, b.dst6_hi, b.dst6_lo = _halves6(src, dst)


_NO_SACK: Final = (0,) * 8


def _fill(buf, at: int, src: int, dst: int, seg: Segment, ttl: int, ident: int, flow: int) -> None:
    """The C builder's description of one TCP segment (a struct fast_seg at buf[at:]), written in one call
    (setting its fields one by one through cffi costs a call each): IPv4, or IPv6 (`flow` its flow label)
    when dst is. The parser's fields (lengths, offsets, fragments) are left 0: the builder computes them."""
    if dst > MAX4:
        version, src4, dst4 = 6, 0, 0
        src_hi, src_lo, dst_hi, dst_lo = _halves6(src, dst)
    else:
        version, src4, dst4, flow = 4, src, dst, 0
        src_hi = src_lo = dst_hi = dst_lo = 0
    o = seg.options
    fo_kind = fo_len = fo_hi = fo_lo = 0
    if o is NO_OPTIONS:
        mss = has_mss = wscale = has_wscale = sack_permitted = has_ts = ts_val = ts_ecr = count = 0
        sack: tuple[int, ...] = _NO_SACK
    else:
        has_mss = o.mss is not None
        mss = o.mss or 0
        has_wscale = o.wscale is not None
        wscale = o.wscale or 0
        sack_permitted = o.sack_permitted
        timestamps = o.timestamps
        has_ts = timestamps is not None
        ts_val, ts_ecr = timestamps or (0, 0)
        blocks = o.sack_blocks[:4]
        count = len(blocks)
        sack = (*(edge for block in blocks for edge in block), *_NO_SACK[2 * count :]) if count else _NO_SACK
        cookie = o.fast_open
        if cookie is not None:  # a SYN's (stack/tcp/fast_open.py)
            fo_kind, fo_len = 254 if o.fast_open_exp else 34, len(cookie)
            padded = int.from_bytes(cookie.ljust(16, b"\0"), "big")
            fo_hi, fo_lo = padded >> 64, padded & 0xFFFFFFFFFFFFFFFF
    _pack_into(
        buf, at, src4, dst4, version, flow, src_hi, src_lo, dst_hi, dst_lo, ident, 0, ttl,
        seg.tos | seg.ecn,  # the socket's DSCP (IP_TOS) and TCP's ECN field (RFC 3168 §5)
        0, 0, seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags, 0, seg.window, seg.urgent,
        mss, has_mss, has_wscale, wscale, sack_permitted, has_ts, count, ts_val, ts_ecr,
        sack[0], sack[1], sack[2], sack[3], sack[4], sack[5], sack[6], sack[7],  # (not *sack: a call by vector)
        0, 0, 0, 0, seg.df, fo_kind, fo_len, fo_hi, fo_lo,
    )  # fmt: skip


def encode_tcp(src: int, dst: int, seg: Segment, ttl: int = 64, ident: int = 0, flow: int = 0) -> bytes:
    """One TCP segment in an IPv4 packet, or an IPv6 one (with `flow` as its flow label) when dst is IPv6."""
    scratch = _scratch()
    _fill(scratch.built_buf, 0, src, dst, seg, ttl, ident, flow)
    payload = seg.payload
    if type(payload) is not bytes:  # a view (into the send buffer, a read batch): C reads it in place
        payload = ffi.from_buffer(payload)
    n = lib.fast_build_tcp(scratch.out, _MAX_PACKET, scratch.built, payload, len(seg.payload))
    if n < 0:
        raise ValueError(f"segment too large to encode: {len(seg.payload)} payload bytes")
    return scratch.out_buf[:n]


class BatchEncoder:
    """Collects a flush (TCP segments, and whole IP packets such as ICMP replies) and builds it into one
    buffer in one C call. With `vnet`, each record gets a virtio_net_hdr and TCP checksums are left to
    the kernel; with `gso` too, runs of full-sized segments of one connection go out as one
    super-segment that the kernel cuts back into exactly those segments (TSO; an IPv6 run only when the core
    made it one Segment). Without `vnet` (a device without offloads), a run the core made one Segment is
    cut in C into wire-sized packets, as Linux's software GSO cuts one for such a device."""

    # the C arrays of the items so far (cffi cdata), grown as a flush needs
    _segs: Any
    _fields: Any
    _payloads: Any
    _plens: Any
    _gso: Any
    _raw: Any

    def __init__(self, vnet: int = 0, gso: bool = False) -> None:
        self.vnet = vnet
        self.gso = bool(gso and vnet)
        self._n = 0
        self._records = 0  # records the build makes at most: one per item, or per piece cut here
        self._bytes = 0
        self._keep: list = []  # the payloads' cdata views, alive until the build
        self._grow(64)
        self._buf_size = 0
        self.merged_segments = 0  # segments that went out inside a super-segment, after its first
        self.cut_segments = 0  # packets cut here from a super-segment (software GSO), after its first
        self._ident = 0  # the next IPv4 ID of a packet without DF

    def _grow(self, n: int) -> None:
        segs = ffi.new("struct fast_seg[]", n)
        payloads = ffi.new("char *[]", n)
        plens = ffi.new("uint32_t[]", n)
        gso = ffi.new("uint16_t[]", n)
        raw = ffi.new("uint8_t[]", n)
        if self._n:
            ffi.memmove(segs, self._segs, ffi.sizeof("struct fast_seg") * self._n)
            ffi.memmove(payloads, self._payloads, ffi.sizeof("char *") * self._n)
            ffi.memmove(plens, self._plens, 4 * self._n)
            ffi.memmove(gso, self._gso, 2 * self._n)
            ffi.memmove(raw, self._raw, self._n)
        self._segs, self._payloads, self._plens, self._gso, self._raw = segs, payloads, plens, gso, raw
        self._fields = ffi.buffer(segs)  # the same memory, for _fill to write a description in one call
        self._cap = n
        self._grow_records(n)

    def _grow_records(self, n: int) -> None:
        self._offs = ffi.new("uint32_t[]", n)
        self._lens = ffi.new("uint32_t[]", n)
        self._records_cap = n

    def __len__(self) -> int:
        return self._n

    def _slot(self, data) -> int:
        i = self._n
        if i == self._cap:
            self._grow(2 * i)
        ptr = ffi.from_buffer(data)
        self._keep.append(ptr)
        self._payloads[i] = ptr
        self._plens[i] = len(data)
        self._bytes += len(data)
        self._n = i + 1
        self._records += 1
        return i

    def tcp(self, src: int, dst: int, seg: Segment, ttl: int = 64, flow: int = 0) -> None:
        i = self._slot(seg.payload)
        self._raw[i] = 0
        self._gso[i] = seg.gso  # a run the core made one Segment (TSO): cut by the kernel, or here
        pieces = 1
        if seg.gso:
            beyond = (len(seg.payload) - 1) // seg.gso
            pieces += beyond
            if self.vnet:
                self.merged_segments += beyond
            else:
                self.cut_segments += beyond
                self._records += beyond
        ident = 0
        if not seg.df and dst <= MAX4:
            # a datagram routers may fragment needs an ID of its own (RFC 6864 §4.1; each piece of a
            # super-segment takes the next, as the kernel's TSO and the software GSO here number them)
            ident = self._ident
            self._ident = (ident + pieces) & 0xFFFF
        _fill(self._fields, i * _SEG_SIZE, src, dst, seg, ttl, ident, flow)

    def tcp_with_options(self, src: int, dst: int, seg: Segment, options: bytes) -> None:
        """A wire-sized TCP segment over IPv4 whose header carries `options` (a multiple of 4 bytes): rare,
        so built whole here (the TCP checksum does not cover the IP header) and copied as packet() is."""
        ident = 0
        if not seg.df:  # (as tcp() numbers one)
            ident = self._ident
            self._ident = (ident + 1) & 0xFFFF
        packet = encode_tcp(src, dst, seg, ident=ident)
        header = bytearray(packet[:20]) + options
        header[0] = 0x40 | len(header) >> 2
        struct.pack_into("!H", header, 2, len(header) + len(packet) - 20)
        fill_ipv4_checksum(header)
        self.packet(bytes(header) + packet[20:])

    def packet(self, packet: bytes) -> None:
        """A whole IP packet (checksums complete), copied as it is."""
        i = self._slot(packet)
        self._raw[i] = 1
        self._gso[i] = 0

    def build(self) -> PacketBatch:
        n, records = self._n, self._records
        size = self._bytes + records * (self.vnet + 120)  # headers: 40 IP + 60 TCP at most, and slack
        if size > self._buf_size:
            self._buf_size = max(size, 2 * self._buf_size)
            self._buf = uncleared("char[]", self._buf_size)
            self._view = memoryview(ffi.buffer(self._buf)).toreadonly()
        if records > self._records_cap:
            self._grow_records(max(records, 2 * self._records_cap))
        count = lib.fast_build_batch(
            self._buf, self._buf_size, self._segs, self._payloads, self._plens, self._gso, self._raw, n,
            self.vnet, self.gso, self._offs, self._lens, self._records_cap,
        )  # fmt: skip
        self._reset()
        if count < 0:
            raise ValueError("a segment too large to encode")
        if self.gso:
            self.merged_segments += n - count
        return PacketBatch(self._buf, self._view, self._offs, self._lens, count, self.vnet)

    def pending(self) -> tuple:
        """The flush as it stands, for a writer that sends it without laying it out (stack/aio/batchio.py's
        write_flush): the segments' descriptions, payloads, payload lengths, GSO sizes, raw marks, count."""
        return self._segs, self._payloads, self._plens, self._gso, self._raw, self._n

    def sent(self, items: int, records: int) -> None:
        """Such a writer sent `records` records holding the first `items` items (a full queue dropped the
        rest): the flush is done."""
        self._reset()
        if self.gso:
            self.merged_segments += items - records

    def _reset(self) -> None:
        self._keep.clear()
        self._n = self._bytes = self._records = 0


def encode_ipv4(src: int, dst: int, proto: int, payload: bytes, ttl: int = 64, ident: int = 0) -> bytes:
    scratch = _scratch()
    n = lib.fast_build_ipv4(scratch.out, _MAX_PACKET, src, dst, proto, ttl, ident, payload, len(payload))
    if n < 0:
        raise ValueError(f"payload too large for one IPv4 packet: {len(payload)} bytes")
    return scratch.out_buf[:n]


def encode_ipv6(
    src: int, dst: int, next_header: int, payload: bytes, hop_limit: int = 64, flow: int = 0, traffic_class: int = 0
) -> bytes:
    """An IPv6 packet around a complete upper-layer payload (its checksum already filled in)."""
    scratch = _scratch()
    b = scratch.header6
    _set_addresses6(b, src, dst)
    b.proto = next_header
    b.ttl = hop_limit
    b.flow = flow
    b.tos = traffic_class
    n = lib.fast_build_ipv6(scratch.out, _MAX_PACKET, b, payload, len(payload))
    if n < 0:
        raise ValueError(f"payload too large for one IPv6 packet: {len(payload)} bytes")
    return scratch.out_buf[:n]


def checksum6(src: int, dst: int, next_header: int, data: bytes) -> int:
    """The Internet checksum of `data` under the IPv6 pseudo-header (RFC 8200 §8.1); 0 over a valid message."""
    b = _scratch().header6
    _set_addresses6(b, src, dst)
    return lib.fast_checksum6(b, next_header, data, len(data))

"""The IPv4 options an ICMP answer sends back (RFC 1122 §3.2.2.6, §3.2.1.8): a record route or timestamp
option of the packet it answers, with our address (and the time) recorded where the option has room, once
as the packet arrived and once as the answer leaves, as Linux's ip_options_compile, ip_options_echo and
ip_options_build do; and the options a fragment after the first keeps. Other options are not sent back;
source-routed packets never get this far (the C parser drops them, as Linux with accept_source_route=0),
nor do malformed options."""

from __future__ import annotations

import struct

END, NOOP, RECORD_ROUTE, TIMESTAMP = 0, 1, 7, 68
TS_ONLY, TS_AND_ADDRESS, TS_PRESPECIFIED = 0, 1, 3  # RFC 791 §3.1, the timestamp option's flags
_OVERFLOW_ONE = 0x10  # the overflow count, in the timestamp option's high nibble
_COPIED = 0x80  # an option to copy into every fragment (RFC 791 §3.1)
_SHORTEST = {RECORD_ROUTE: 3, TIMESTAMP: 4}  # bytes an option needs to be one (type, length, pointer...)


def arrived(header: bytes, ours: int, stamp: int) -> bytes:
    """An IPv4 header as it reaches us (at `ours`, at `stamp`, RFC 792's milliseconds since midnight UT):
    its record route and timestamp options with our entries, where they have room, as Linux's
    ip_options_compile records them in the packet it takes in (the checksum left as it came). An ICMP
    error quotes the packet so."""
    out = bytearray(header)
    for at, kind in _walk(header):
        if kind in _SHORTEST:
            _record(out, at, kind, ours, stamp, arriving=True)
    return bytes(out)


def reply_options(header: bytes, ours: int, stamp: int) -> bytes:
    """The options of an answer from `ours` to a packet whose header `arrived` gave: its record route first,
    then its timestamp, with our entries again where there is still room (Linux's ip_options_echo and
    ip_options_build), padded to a multiple of 4 bytes; b"" when it has neither."""
    found = {kind: bytearray(header[at : at + header[at + 1]]) for at, kind in _walk(header) if kind in _SHORTEST}
    out = bytearray()
    for kind in (RECORD_ROUTE, TIMESTAMP):
        if kind in found:
            _record(found[kind], 0, kind, ours, stamp, arriving=False)
            out += found[kind]
    out += bytes(-len(out) % 4)
    return bytes(out)


def later_fragment_header(header: bytes) -> bytes:
    """The header of a fragment after the first: options without the copied flag (RFC 791 §3.1; record
    route and timestamp among them) turned into no-operations, the length kept, as Linux's
    ip_options_fragment does."""
    out = bytearray(header)
    for at, kind in _walk(header):
        if not kind & _COPIED:
            out[at : at + header[at + 1]] = bytes([NOOP]) * header[at + 1]
    return bytes(out)


def _walk(header: bytes) -> list[tuple[int, int]]:
    """Where each option of an IPv4 header starts, and its kind; no-operations left out. The C parser has
    refused malformed options; one that is so anyway ends the walk rather than loop or run past the end."""
    found = []
    at, end = 20, (header[0] & 0x0F) * 4
    while at < end and header[at] != END:
        if header[at] == NOOP:
            at += 1
            continue
        kind = header[at]
        size = header[at + 1] if at + 1 < end else 0
        if size < _SHORTEST.get(kind, 2) or at + size > end:
            break
        found.append((at, kind))
        at += size
    return found


def _record(option: bytearray, at: int, kind: int, ours: int, stamp: int, arriving: bool) -> None:
    """Our entry in the record route or timestamp option (`kind`, one of _SHORTEST's) at `at`, if it has room
    (RFC 791 §3.1): a full timestamp option counts the hop it could not record in its overflow count, on
    arrival (a full count was refused by the parser)."""
    size, pointer = option[at + 1], option[at + 2]
    if kind == RECORD_ROUTE:
        if pointer + 3 <= size:
            struct.pack_into("!I", option, at + pointer - 1, ours)
            option[at + 2] = pointer + 4
        return
    flag = option[at + 3] & 0x0F
    entry = 4 if flag == TS_ONLY else 8
    if pointer + entry - 1 > size:
        if arriving and pointer > size and flag != TS_PRESPECIFIED:
            option[at + 3] += _OVERFLOW_ONE
        return
    if flag == TS_ONLY:
        struct.pack_into("!I", option, at + pointer - 1, stamp)
    elif flag == TS_AND_ADDRESS:
        struct.pack_into("!II", option, at + pointer - 1, ours, stamp)
    elif _someone_elses(struct.unpack_from("!I", option, at + pointer - 1)[0], ours):
        return  # a prespecified address not ours: not our entry to fill
    else:
        struct.pack_into("!I", option, at + pointer + 3, stamp)
    option[at + 2] = pointer + entry


def _someone_elses(address: int, ours: int) -> bool:
    """Whether a prespecified address is another host's unicast address (Linux fills in an entry unless
    inet_addr_type says RTN_UNICAST: ours, 0.0.0.0, broadcast and multicast ones get our time)."""
    return address != ours and address != 0 and address != 0xFFFFFFFF and address >> 28 != 0xE

"""The one-packet codec functions (decode, encode_tcp) from several threads at once: each thread's packets
come back as that thread built them (cffi lets other threads run during each C call)."""

import threading

from stack.wire.codec import TcpPacket, decode, encode_tcp
from stack.wire.segment import Flags, Segment

ROUNDS = 3000


def _round_trips(port: int, failures: list[str]) -> None:
    for i in range(ROUNDS):
        seg = Segment(port, 80, i, 0, Flags.SYN, 1000 + port, bytes([port & 0xFF]) * (port % 50))
        pkt = decode(encode_tcp(0x0A000001, 0x0A000002, seg))
        if type(pkt) is not TcpPacket or (pkt.segment.src_port, pkt.segment.seq) != (port, i):
            failures.append(f"thread {port} round {i}: {pkt}")
            return


def test_codec_from_many_threads_keeps_each_threads_packets_apart():
    failures: list[str] = []
    threads = [threading.Thread(target=_round_trips, args=(port, failures)) for port in range(40000, 40008)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]

"""ECN against the kernel (RFC 3168): the namespace's kernel asks for it (tcp_ecn=1), tcpstack --ecn agrees."""

from __future__ import annotations

from scapy.all import IP, TCP, rdpcap

from tests.integration.conftest import ADDR, start_serve


def test_ecn_negotiated_with_the_kernel_and_our_data_is_ect0(netns, tmp_path):
    assert netns.run(["sysctl", "-w", "net.ipv4.tcp_ecn=1"]).returncode == 0
    pcap = tmp_path / "ecn.pcap"
    served = start_serve(netns, tmp_path, "--ecn", "--pcap", str(pcap))
    result = netns.run(["curl", "-sS", "-m", "20", "-o", "/dev/null", f"{served.url}/bytes/100000"], text=True)
    assert result.returncode == 0, result.stderr
    assert served.stop() == 0
    packets = [p for p in rdpcap(str(pcap)) if TCP in p]
    syn = next(p for p in packets if p[TCP].flags == "SEC")  # the kernel's ECN-setup SYN
    synack = next(p for p in packets if p[TCP].flags.S and p[TCP].flags.A)
    assert synack[TCP].flags.E and not synack[TCP].flags.C
    ours = [p for p in packets if p[IP].src == ADDR and len(p[TCP].payload) > 0]
    base, high = ours[0][TCP].seq if ours else 0, 0
    first = []  # our new data; a retransmission (a loss on a loaded machine) is not ECN-capable (§6.1.5)
    for p in ours:
        offset = (p[TCP].seq - base) % 2**32
        if offset >= high:
            first.append(p)
        high = max(high, offset + len(p[TCP].payload))
    assert first and all(p[IP].tos & 3 == 2 for p in first)  # ECT(0) on our new data
    assert syn[IP].tos & 3 == 0  # SYNs are never ECN-capable (§6.1.1)

"""Header prediction as a user sees it: `tcpstack stats` counts the segments that took the fast path."""

from __future__ import annotations

import hashlib
import os

from stack.services.http import pattern_sha256


def test_established_bulk_transfers_take_the_fast_path_and_count_as_linux(served, tmp_path):
    """RFC 9293 §3.10.7.4 with header prediction: the kernel's upload arrives as in-order data segments
    and its ACKs of a download move SND.UNA; the bytes are right and the ACKs count as TCPHPAcks. The
    upload's packets count as TCPHPHits only when memory reserved before takes them, as Linux counts
    (tests/scripts/data/header_prediction_counts_predicted_segments.pkt): a super-segment never is, so
    with offloads none is; `tcpstack stats` shows the counter all the same."""
    data = os.urandom(2_000_000)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    up = served.ns.run(["curl", "-sS", "-m", "60", "--data-binary", f"@{path}", f"{served.url}/sha256"], text=True)
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == hashlib.sha256(data).hexdigest()
    down = served.ns.run(["curl", "-sS", "-m", "60", f"{served.url}/bytes/2000000"])
    assert down.returncode == 0, down.stderr
    assert hashlib.sha256(down.stdout).hexdigest() == pattern_sha256(2_000_000)
    stats = served.stats()
    assert "TCPHPHits" in stats and stats["TCPHPAcks"] > 0, {k: stats[k] for k in ("InSegs", "TCPHPHits", "TCPHPAcks")}

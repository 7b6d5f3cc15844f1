"""Throwaway self-signed certificates for TLS tests, made with the openssl command line tool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def make_certificate(directory: Path, ips: list[str]) -> tuple[Path, Path]:
    """cert.pem and key.pem in `directory`: P-256, valid one day, for the given IP addresses."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (tools/setup installs it)")
    cert, key = directory / "cert.pem", directory / "key.pem"
    san = "subjectAltName=" + ",".join(f"IP:{ip}" for ip in ips)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=tcpstack test", "-addext", san,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key

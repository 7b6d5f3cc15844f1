"""Exceptions raised by the TCP core. They signal API misuse only: remote misbehaviour never raises."""


class LocalProtocolError(Exception):
    """The application called the core in a way the current state does not allow (RFC 9293 §3.10)."""

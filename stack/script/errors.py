"""How a script run ends when it does not pass."""

from __future__ import annotations


class ScriptFailure(AssertionError):
    """The stack did not behave as the script says: the message shows the line, expected and actual."""


class ScriptSkip(Exception):
    """The script needs something tcpstack cannot do yet: it is skipped with the reason, never passed."""

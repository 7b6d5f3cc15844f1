"""`tcpstack script FILE.pkt...`: run scripts and print one PASS/SKIP/FAIL line each."""

from __future__ import annotations

from stack.script.errors import ScriptFailure, ScriptSkip
from stack.script.parser import ScriptSyntaxError
from stack.script.recording import Recorder
from stack.script.runner import run_script


def run_scripts(paths: list[str], trace: str | None = None, pcap: str | None = None, ip_version: str = "ipv4") -> int:
    """The exit code: 0 when every script passed or was skipped, 1 when one failed or could not be read.

    `trace` (`-` for transitions on stderr, else an event log file) and `pcap` record what one script did,
    in its virtual time; a failing script is recorded up to where it failed. `ip_version` is packetdrill's
    option (a script's own `--ip_version` line wins)."""
    failed = 0
    for path in paths:
        recorder = Recorder(pcap, trace) if trace is not None or pcap is not None else None
        try:
            run_script(path, options=[("ip_version", ip_version)], recorder=recorder)
        except ScriptSkip as exc:
            print(f"SKIP {path}: {exc}")
        except (ScriptFailure, ScriptSyntaxError, OSError) as exc:
            failed += 1
            print(f"FAIL {path}\n{exc}")
        else:
            print(f"PASS {path}")
        finally:
            if recorder is not None:
                recorder.close()
    return 1 if failed else 0

"""Linux TCP sysctls (net.ipv4.NAME) as TcpConfig changes, for a script's option lines and shell lines.

A sysctl the core models becomes the TcpConfig field it is. A sysctl whose given value is what the core
always does (tcp_dsack=1, tcp_recovery=1: RACK) is accepted as is. A sysctl that only matters to
features tcpstack leaves out (TSO sizing) is accepted: the scripts that use those features SKIP on the
feature itself. Any other name or value raises ScriptSkip: never run a script under a
setting it did not get.

The other way round, linux_sysctls gives the sysctls under which a Linux socket starts as a tcpstack
connection with a given TcpConfig does, for comparing the two (tools/linux-check, the shapes test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from stack.script.errors import ScriptFailure, ScriptSkip
from stack.tcp import congestion, fast_open
from stack.tcp.config import TcpConfig
from stack.tcp.congestion.hystart import HyStartParams


def _flag(value: int) -> bool:
    return value != 0


def _buffers(value: str) -> tuple[int, int, int]:
    parts = value.split()
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(value)
    low, default, high = map(int, parts)
    return low, default, high


def _rmem(value: str) -> dict[str, object]:
    # tcp_rmem[1] is the receive memory (sk_rcvbuf), twice the core's receive_buffer as SO_RCVBUF's is;
    # the window scale is chosen for tcp_rmem[2], the size the memory may grow to (tcp_select_initial_window)
    _, default, high = _buffers(value)
    return {"receive_buffer": default // 2, "receive_buffer_max": max(default, high)}


def _wmem(value: str) -> dict[str, object]:
    # sk_sndbuf starts at tcp_wmem[1] and autotuning may grow it to tcp_wmem[2] (tcp_sndbuf_expand)
    _, default, high = _buffers(value)
    return {"send_buffer": default, "send_buffer_max": max(default, high)}


def _congestion(value: str) -> dict[str, object]:
    if value not in congestion.REGISTRY:
        raise ValueError(value)
    return {"congestion": value}


def _ecn(value: str) -> dict[str, object]:
    # 1 asks for ECN and accepts it, 2 only accepts it when a peer's SYN asks (RFC 3168 §6.1.1)
    if value not in ("0", "1", "2"):
        raise ValueError(value)
    return {"ecn": value == "1", "ecn_accept": value == "2"}


def _in_range(value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ValueError(value)  # a value Linux refuses or tcpstack does not model: the script SKIPs
    return value


class BadValue(ValueError):
    """The value is not even of the sysctl's type: the script is wrong, not the stack."""

    def __init__(self, value: str, why: str = "the value must be an integer") -> None:
        super().__init__(value)
        self.why = why


def _fast_open_keys(value: str) -> dict[str, object]:
    try:
        return {"fast_open_keys": fast_open.parse_keys(value)}
    except ValueError as exc:
        raise BadValue(value, str(exc)) from None  # Linux refuses it (EINVAL)


def _integer(field: str, convert: Callable[[int], object] = int) -> Callable[[str], dict[str, object]]:
    def apply(value: str) -> dict[str, object]:
        try:
            number = int(value, 0)
        except ValueError:
            raise BadValue(value) from None
        return {field: convert(number)}

    return apply


# name -> the TcpConfig changes its value makes (ValueError: a value the core cannot take)
MODELLED: dict[str, Callable[[str], dict[str, object]]] = {
    "tcp_timestamps": _integer("timestamps", _flag),
    "tcp_sack": _integer("sack", _flag),
    "tcp_window_scaling": _integer("window_scaling", _flag),
    "tcp_challenge_ack_limit": _integer("challenge_ack_limit"),  # RFC 5961 §7
    "tcp_invalid_ratelimit": _integer("invalid_ratelimit", lambda v: _in_range(v, 0, 1 << 31) / 1000),  # in ms
    "tcp_retries2": _integer("max_retries"),  # a time: that many timeouts doubling from 200 ms
    "tcp_orphan_retries": _integer("orphan_retries"),  # the same for a connection the application let go
    "tcp_syn_retries": _integer("syn_retries"),
    "tcp_syn_linear_timeouts": _integer("syn_linear_timeouts", lambda v: _in_range(v, 0, 127)),
    "tcp_synack_retries": _integer("synack_retries"),
    "tcp_fin_timeout": _integer("fin_timeout"),
    "tcp_syncookies": _integer("syncookies"),  # 0 never, 1 when the SYN queue is full, 2 always
    "tcp_fastopen": _integer("fast_open", lambda v: _in_range(v, 0, 0xFFFFFFFF)),  # (stack/tcp/fast_open.py)
    "tcp_fastopen_key": _fast_open_keys,
    "tcp_max_syn_backlog": _integer("syn_backlog"),
    "tcp_ecn": _ecn,
    "tcp_frto": _integer("frto", _flag),  # RFC 5682
    "tcp_early_retrans": _integer("loss_probes", lambda v: v >= 3),  # 3 and 4 enable TLP (RFC 8985 §7)
    "tcp_congestion_control": _congestion,
    "tcp_rmem": _rmem,
    "tcp_wmem": _wmem,
    "tcp_rto_max_ms": _integer("max_rto", lambda v: v / 1000),
    "tcp_slow_start_after_idle": _integer("slow_start_after_idle", _flag),  # RFC 5681 §4.1
    "tcp_notsent_lowat": _integer("notsent_lowat"),
    "tcp_min_tso_segs": _integer("min_tso_segs", lambda v: _in_range(v, 1, 255)),  # the smallest GSO packet
    "tcp_pacing_ss_ratio": _integer("pacing_ss_ratio", lambda v: _in_range(v, 0, 3000)),  # (fq pacing)
    "tcp_pacing_ca_ratio": _integer("pacing_ca_ratio", lambda v: _in_range(v, 0, 3000)),
    "tcp_mtu_probing": _integer("mtu_probing", lambda v: _in_range(v, 0, 2)),  # RFC 4821
    "tcp_base_mss": _integer("base_mss", lambda v: _in_range(v, 48, 65535)),
    "tcp_probe_threshold": _integer("mtu_probe_threshold", lambda v: _in_range(v, 0, 65535)),
    "tcp_probe_interval": _integer("mtu_probe_interval", lambda v: float(_in_range(v, 0, 1 << 31))),
    "tcp_shrink_window": _integer("shrink_window", _flag),
    "tcp_comp_sack_nr": _integer("comp_sack_nr", lambda v: _in_range(v, 0, 255)),
    "tcp_comp_sack_delay_ns": _integer("comp_sack_delay", lambda v: _in_range(v, 0, 1 << 63) / 1e9),
}
# name -> the values that are what the core always does (None: any value, the setting is for a feature
# tcpstack does not have, whose scripts SKIP on the feature itself, or what the core does fits any value)
FIXED: dict[str, set[str] | None] = {
    "tcp_dsack": {"1"},  # D-SACK is always sent (RFC 2883)
    "tcp_fack": {"0", "1"},  # Linux ignores it since RACK
    "tcp_reordering": {"3"},  # DupThresh (RFC 5681 §3.2)
    "tcp_recovery": {"1"},  # RACK loss detection (RFC 8985)
    # the held ACK's timer may fire this much late: the core fires it on time, which any slack allows
    "tcp_comp_sack_slack_ns": None,
    "tcp_tso_win_divisor": None,
}


# tcp_cubic's module parameters (kept as "tcp_cubic.NAME") -> the HyStartParams field and its value
HYSTART_PARAMETERS: dict[str, tuple[str, Callable[[int], object]]] = {
    "hystart": ("enabled", _flag),
    "hystart_detect": ("detect", int),
    "hystart_low_window": ("low_window", int),
    "hystart_ack_delta_us": ("ack_delta", lambda us: us / 1e6),
}


def _hystart(name: str, value: str, params: HyStartParams, where: str) -> HyStartParams:
    """One tcp_cubic module parameter applied to the HyStart parameters set so far."""
    try:
        number = int(value, 0)
    except ValueError:
        raise ScriptFailure(f"{where}: tcp_cubic parameter {name}={value}: the value must be an integer") from None
    if name not in HYSTART_PARAMETERS or number < 0:
        raise ScriptSkip(f"{where}: tcp_cubic parameter {name}={value} is not modelled")
    field, convert = HYSTART_PARAMETERS[name]
    return replace(params, **{field: convert(number)})


def config_changes(settings: dict[str, str], where: str) -> dict[str, object]:
    """TcpConfig changes for sysctl settings (name -> value, the last one set wins)."""
    changes: dict[str, object] = {}
    hystart: HyStartParams | None = None
    for name, value in settings.items():
        module, dot, parameter = name.partition(".")
        if dot and module == "tcp_cubic":
            hystart = _hystart(parameter, value, hystart or HyStartParams(), where)
            changes["hystart"] = hystart
        elif name in MODELLED:
            try:
                changes.update(MODELLED[name](value))
            except BadValue as exc:
                raise ScriptFailure(f"{where}: sysctl {name}={value}: {exc.why}") from None
            except ValueError:
                raise ScriptSkip(f"{where}: sysctl {name}={value} is not a value tcpstack models") from None
        elif name in FIXED:
            allowed = FIXED[name]
            if allowed is not None and value not in allowed:
                raise ScriptSkip(f"{where}: sysctl {name}={value} is not modelled (tcpstack: {sorted(allowed)[0]})")
        else:
            raise ScriptSkip(f"{where}: sysctl {name} is not modelled")
    return changes


def linux_sysctls(config: TcpConfig) -> dict[str, str]:
    """The net.ipv4 sysctls that give a Linux socket tcpstack's defaults (`config`)."""
    return {
        "tcp_rmem": f"4096 {2 * config.receive_buffer} {config.receive_buffer_max}",
        "tcp_wmem": f"4096 {config.send_buffer} {config.send_buffer_max}",
        "tcp_slow_start_after_idle": str(int(config.slow_start_after_idle)),
        "tcp_ecn": "1" if config.ecn else "2" if config.ecn_accept else "0",
        "tcp_syn_retries": str(config.syn_retries),
        "tcp_syn_linear_timeouts": str(config.syn_linear_timeouts),
        "tcp_synack_retries": str(config.synack_retries),
        "tcp_retries2": str(config.max_retries),
        "tcp_orphan_retries": str(config.orphan_retries),
        "tcp_fin_timeout": str(int(config.fin_timeout)),
        "tcp_syncookies": str(config.syncookies),
        "tcp_fastopen": hex(config.fast_open),
    }

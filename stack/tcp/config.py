"""Tunables of the TCP core. Defaults follow Linux where RFC 9293 leaves a choice."""

from __future__ import annotations

from dataclasses import dataclass, replace
from random import Random
from typing import Final

from stack.tcp.congestion.hystart import HyStartParams
from stack.wire.addr import MAX4, over_loopback

NO_LOWAT: Final = 0xFFFFFFFF  # TcpConfig.notsent_lowat's "no limit", as Linux's default tcp_notsent_lowat
IPV6_EXTRA_HEADER: Final = 20  # an IPv6 header is 40 bytes, an IPv4 one 20: MSS = MTU - 60 (RFC 8200 §8.3)
# the MSS over the loopback: Linux's lo has an MTU of 65536, which ipv4_default_advmss caps at 65535 - 40
# and ip6_default_advmss takes as 65536 - 60
LOOPBACK_MSS: Final = 65495
LOOPBACK_MSS6: Final = 65476
# IP_MTU_DISCOVER (ip(7)): the values, which of them set DF on a TCP segment (Linux ip_dont_fragment: the
# route's MTU is never locked here), and which resend the flight at once when a router reports a smaller
# MTU (Linux tcp_v4_mtu_reduced); in every mode later segments fit the reported MTU (tcp_current_mss)
PMTUDISC_DONT: Final = 0
PMTUDISC_WANT: Final = 1
PMTUDISC_DO: Final = 2
PMTUDISC_PROBE: Final = 3
PMTUDISC_INTERFACE: Final = 4
PMTUDISC_OMIT: Final = 5
PMTUDISC_SETS_DF: Final = (PMTUDISC_WANT, PMTUDISC_DO)
PMTUDISC_RESENDS: Final = (PMTUDISC_WANT, PMTUDISC_DO, PMTUDISC_PROBE)


@dataclass(frozen=True, slots=True)
class TcpConfig:
    mss: int = 1460  # our MSS option over IPv4: MTU - 40 (RFC 9293 §3.7.1); over IPv6 20 less
    msl: float = 30.0  # TIME_WAIT lasts 2*MSL (RFC 9293 §3.4.2); Linux's TIME_WAIT is 60 s
    initial_rto: float = 1.0  # RFC 6298 (2.1)
    min_rto: float = 0.2  # Linux TCP_RTO_MIN (RFC 6298 (2.4) says 1 s; Linux uses 200 ms)
    max_rto: float = 120.0  # Linux TCP_RTO_MAX; RFC 6298 (2.5) allows a maximum of at least 60 s
    max_retries: int = 15  # data/FIN: ETIMEDOUT after as long as this many doubling RTOs (Linux tcp_retries2)
    # max_retries for a connection the application let go (Linux tcp_orphan_retries); 0: 8 while the
    # backed-off RTO is below max_rto
    orphan_retries: int = 0
    syn_retries: int = 6  # Linux tcp_syn_retries
    # Linux tcp_syn_linear_timeouts (6.5 on): the first SYN retransmissions keep the initial RTO instead of
    # doubling it, and come on top of syn_retries
    syn_linear_timeouts: int = 4
    # TCP_USER_TIMEOUT (RFC 5482): seconds transmitted data may stay unacknowledged; 0: the retry counts rule
    user_timeout: float = 0.0
    synack_retries: int = 5  # Linux tcp_synack_retries
    # the send buffer in Linux's units (sk_sndbuf: bytes queued and each skb's overhead, write_queue.py),
    # grown with the congestion window up to send_buffer_max (tcp_wmem[2]) unless SO_SNDBUF set it
    send_buffer: int = 1 << 20
    send_buffer_max: int = 4 << 20
    send_buffer_locked: bool = False  # SO_SNDBUF fixed the size: no autotuning
    min_tso_segs: int = 2  # the fewest segments in a GSO packet (Linux tcp_min_tso_segs)
    # TCP_NOTSENT_LOWAT (Linux tcp_notsent_lowat): a writer may queue while fewer bytes than this are unsent
    notsent_lowat: int = 0xFFFFFFFF  # (NO_LOWAT: no limit)
    # SO_RCVBUF: the receive memory is twice this (Linux sk_rcvbuf), and the first window about this
    # (stack/tcp/rcv_space.py); unless locked (set by SO_RCVBUF), it grows with out-of-order data
    receive_buffer: int = 1 << 20
    receive_buffer_locked: bool = False
    # tcp_rmem[2]: the receive memory may grow to this, and the window scale is chosen for it (6 MB by
    # default: scale 7) unless SO_RCVBUF fixed the buffer (tcp_select_initial_window)
    receive_buffer_max: int = 6 << 20
    # Linux tcp_shrink_window: with window scaling, the window offered may shrink as memory fills
    # (RFC 7323 §2.4 allows it); off, the right edge never moves left (RFC 9293 §3.8.6)
    shrink_window: bool = False
    window_scaling: bool = True  # RFC 7323 §2
    loss_probes: bool = True  # tail loss probes (RFC 8985 §7), like Linux tcp_early_retrans
    frto: bool = True  # F-RTO detection of spurious timeouts (RFC 5682), like Linux tcp_frto
    ecn: bool = False  # ask for and accept ECN (RFC 3168); Linux by default only accepts it (tcp_ecn=2)
    ecn_accept: bool = False  # accept ECN when a peer's SYN asks, without asking ourselves (tcp_ecn=2)
    timestamps: bool = True  # RFC 7323 timestamps (RTT measurement, PAWS), on like Linux tcp_timestamps=1
    sack: bool = True  # offer SACK-permitted and send SACK blocks (RFC 2018)
    delayed_ack: float = 0.04  # delayed-ACK timeout; RFC 9293 §3.8.6.3 allows up to 0.5 s, Linux 40-200 ms
    # SACK compression (Linux tcp_comp_sack_nr, tcp_comp_sack_delay_ns): after three duplicate ACKs, the
    # ACKs of out-of-order data wait 5% of the RTT, at most comp_sack_delay, and at most this many go as one
    comp_sack_nr: int = 44  # 0: every out-of-order segment is ACKed at once (RFC 5681 §4.2)
    comp_sack_delay: float = 0.001
    nodelay: bool = False  # TCP_NODELAY disables Nagle (RFC 9293 §3.7.4)
    cork: bool = False  # TCP_CORK (Linux tcp(7)): a partial last segment waits until uncorked
    initial_window_segments: int = 10  # RFC 6928, as Linux
    # after more than an RTO without sending, a write restarts from the initial window (RFC 5681 §4.1,
    # RFC 2861; Linux tcp_slow_start_after_idle, on there by default); off: the window is kept (RFC 7661)
    slow_start_after_idle: bool = False
    fin_timeout: float = 60.0  # orphaned FIN_WAIT_2 lifetime (Linux tcp_fin_timeout)
    keepalive: bool = False  # SO_KEEPALIVE (RFC 9293 §3.8.4; RFC 1122 §4.2.3.6: off by default)
    keepalive_idle: float = 7200.0  # TCP_KEEPIDLE: idle time before the first probe (Linux default)
    keepalive_interval: float = 75.0  # TCP_KEEPINTVL
    keepalive_count: int = 9  # TCP_KEEPCNT: unanswered probes before the connection is dropped
    challenge_ack_limit: int = 1000  # challenge ACKs per second per connection (RFC 5961 §7)
    # seconds between answers to unacceptable segments without data, challenge ACKs included, per
    # connection (Linux tcp_invalid_ratelimit)
    invalid_ratelimit: float = 0.5
    backlog: int = 128  # default listen backlog (accept queue)
    syn_backlog: int = 256  # half-open connections per listener (SYN queue)
    # SYN cookies (RFC 4987 §3.6) as Linux tcp_syncookies: 0 never, 1 when the SYN queue is full, 2 always
    syncookies: int = 1
    # TCP Fast Open (RFC 7413) as Linux's net.ipv4.tcp_fastopen bits (stack/tcp/fast_open.py): 0x2 lets a
    # listener take it once TCP_FASTOPEN gives it a queue, 0x400 gives every listener one, 0x200 takes
    # data in a SYN without a cookie; the client side (0x1) is not implemented
    fast_open: int = 0x1
    fast_open_keys: tuple[bytes, ...] = ()  # net.ipv4.tcp_fastopen_key: primary (and backup); () a random one
    max_connections: int = 32768  # connections per stack, TIME_WAIT included; SYNs beyond it are dropped
    # TIME_WAIT entries per stack (Linux tcp_max_tw_buckets, 262144 there for a smaller TCB); beyond it a
    # closing connection skips TIME_WAIT, as Linux's does
    max_time_wait: int = 16384
    ofo_max_bytes: int = 1 << 20  # out-of-order bytes held per connection (never more than the window)
    ofo_max_holes: int = 256  # separate out-of-order runs held per connection (each costs a hole to track)
    # bytes all connections together may hold in receive, out-of-order and send buffers (Linux tcp_mem,
    # stack/tcp/memory.py): pressure from 3/4 of it, new data dropped beyond it
    memory_limit: int = 128 << 20
    # where ISNs, timestamp offsets and controllers' random choices come from; a seeded Random makes a
    # run repeatable (tcpstack sim); None: the OS's randomness (RFC 6528 keyed hash for ISNs)
    rng: Random | None = None
    # how late the caller's timers may fire (the event loop's resolution): a paced sender woken late may
    # catch up by this much at once, as Linux sends about 1 ms of data per TSO burst (tcp_tso_autosize)
    timer_slack: float = 0.0
    # the device cuts a segment of up to this many payload bytes into MSS-sized ones (TSO): runs of full
    # segments may leave as one; 0: every segment leaves MSS-sized (the Stack sets it from its device)
    tso_max_bytes: int = 0
    # header prediction (stack/tcp/header_prediction.py): off, every segment takes the full path of RFC 9293
    # §3.10.7, with the same outcome; tests turn it off to compare the two
    header_prediction: bool = True
    # IP_TOS / IPV6_TCLASS: the TOS (traffic class) byte of our segments, its ECN field left to TCP (RFC 3168
    # §5; Linux masks it off for a stream socket)
    tos: int = 0
    # urgent data read in-line (SO_OOBINLINE), as RFC 6093 §6 asks of applications; off, the urgent byte is
    # left out of the stream and read with recv(MSG_OOB), Linux's default (stack/tcp/urgent.py)
    urgent_inline: bool = True
    pmtu_discovery: int = PMTUDISC_WANT  # IP_MTU_DISCOVER, Linux's default (ip_no_pmtu_disc=0)
    congestion: str = "cubic"  # name in stack.tcp.congestion.REGISTRY (or "package.module:Class"); Linux default
    # CUBIC leaves its first slow start by HyStart++ (RFC 9406); with parameters, by Linux's HyStart instead
    # (tcp_cubic's hystart_detect, hystart_low_window, hystart_ack_delta_us)
    hystart: HyStartParams | None = None
    # packetization-layer path MTU discovery (RFC 4821), as Linux's tcp_mtu_probing: 0 off, 1 once
    # retransmission timeouts suggest a black hole, 2 always; the search starts at base_mss, stops when
    # its range is narrower than the threshold (bytes) and starts over after the interval (seconds)
    mtu_probing: int = 0
    base_mss: int = 1024
    mtu_probe_threshold: int = 8
    mtu_probe_interval: float = 600.0
    # a pacing qdisc (Linux's fq) on the device: segments leave at Linux's pacing rate, the window per
    # SRTT times pacing_ss_ratio percent in slow start and pacing_ca_ratio after (stack/tcp/pacing.py)
    fq_pacing: bool = False
    # SO_MAX_PACING_RATE (bytes per second; None: no limit): the pacing rate is at most this, and TCP paces
    # itself at the rate even without fq or a controller's own rate (Linux's internal pacing)
    max_pacing_rate: float | None = None
    # the device's queue takes no packet (a pfifo qdisc of limit 0): every send fails locally
    qdisc_drops: bool = False
    pacing_ss_ratio: int = 200
    pacing_ca_ratio: int = 120


# the least MSS a route offers whatever its MTU (Linux ip_rt_min_advmss; IPv6's minimum MTU less headers)
MIN_ADVMSS: Final = 256
MIN_ADVMSS6: Final = 1220


def for_ipv6(config: TcpConfig) -> TcpConfig:
    """The same tunables for a connection over IPv6, whose header leaves 20 bytes less for the MSS."""
    return replace(config, mss=config.mss - IPV6_EXTRA_HEADER)


class PathConfigs:
    """The config a connection takes on its path, made from the one a stack or listener holds: over IPv6
    the MSS is 20 bytes smaller, with the stack itself (the loopback) it is lo's. The variants are made once
    per config and kept by identity; a script's sysctls and socket options replace the config, so the
    last few are kept."""

    __slots__ = ("_made", "_narrowed")

    def __init__(self) -> None:
        self._made: list[tuple[TcpConfig, tuple[TcpConfig, TcpConfig, TcpConfig]]] = []
        self._narrowed: list[tuple[TcpConfig, int, TcpConfig]] = []  # (path config, MSS, its variant)

    def of(self, config: TcpConfig, local_ip: int, remote_ip: int, path_mtu: int = 0) -> TcpConfig:
        """The config for a connection from local_ip to remote_ip; `path_mtu` is the one an ICMP error
        taught for that destination (0: none), which lowers the MSS we offer and count our windows in, as
        Linux's route advmss (ipv4_default_advmss, ip6_default_advmss)."""
        ipv6 = local_ip > MAX4
        looped = over_loopback(local_ip, remote_ip)
        if ipv6 or looped:
            variants = self._variants(config)
            config = (variants[2] if ipv6 else variants[1]) if looped else variants[0]
        if path_mtu:
            advmss = max(path_mtu - 60, MIN_ADVMSS6) if ipv6 else max(path_mtu - 40, MIN_ADVMSS)
            if advmss < config.mss:
                return self._narrow(config, advmss)
        return config

    def _narrow(self, config: TcpConfig, mss: int) -> TcpConfig:
        """The config with a smaller MSS, made once for the last few (config, MSS) pairs."""
        for base, size, narrowed in self._narrowed:
            if base is config and size == mss:
                return narrowed
        narrowed = replace(config, mss=mss)
        self._narrowed = [*self._narrowed[-3:], (config, mss, narrowed)]
        return narrowed

    def _variants(self, config: TcpConfig) -> tuple[TcpConfig, TcpConfig, TcpConfig]:
        """(IPv6, IPv4 loopback, IPv6 loopback) for the config, made on first use."""
        for base, variants in self._made:
            if base is config:
                return variants
        made = (for_ipv6(config), replace(config, mss=LOOPBACK_MSS), replace(config, mss=LOOPBACK_MSS6))
        self._made = [*self._made[-3:], (config, made)]
        return made

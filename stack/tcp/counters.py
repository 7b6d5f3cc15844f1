"""One connection's counters, each with the name Linux's MIB gives it (`nstat`, `tcpstack stats`): those
every segment moves, and the events few connections see, held apart and made at the first of them.
Seven names are tcpstack's own, for what Linux 6.18 does not count under a name of its own: InSegsConn
and OutRstsConn (the connections' share of InSegs and OutRsts), OutOfWindowDrops, OutOfWindowRsts,
TCPECNRcvCE, TCPECNReductions and TCPMTUPProbes."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Final


# Dataclasses for their equality and repr, each field carrying its Linux name, with the constructors written
# out (init=False): compiled, a dataclass's generated __init__ runs as Python (three times the time of the
# interpreted one), a written one natively. `fields()` names every counter; tests check that the
# constructors set each of them and that add() sums each.
@dataclass(init=False, slots=True)
class Events:
    """The counters of events a short, clean connection never sees (losses, drops, limits, probes): an idle
    connection holds none of them (the idle budget, tests/tcp/test_idle_cost.py)."""

    resets_out: int = field(metadata={"linux": "OutRstsConn"})
    # RFC 5961 §3.2, §4.2, §5.2
    challenge_acks: int = field(metadata={"linux": "TCPChallengeACK"})
    # SYNs on a synchronized connection, each meeting a challenge (RFC 5961 §4.2), sent or held back
    syn_challenges: int = field(metadata={"linux": "TCPSYNChallenge"})
    # unacceptable segments (RFC 9293 §3.10.7.4 first check)
    out_of_window: int = field(metadata={"linux": "OutOfWindowDrops"})
    # retransmission timer expiries
    timeouts: int = field(metadata={"linux": "TCPTimeouts"})
    # segments loss recovery resent (Linux tcp_xmit_retransmit_queue): in fast recovery, and in RTO recovery
    # after the timer's own resend; tail loss probes are neither
    fast_retransmits: int = field(metadata={"linux": "TCPFastRetrans"})
    slow_start_retransmits: int = field(metadata={"linux": "TCPSlowStartRetrans"})
    # fast recoveries entered, with SACK and without (tcp_enter_recovery)
    sack_recoveries: int = field(metadata={"linux": "TCPSackRecovery"})
    reno_recoveries: int = field(metadata={"linux": "TCPRenoRecovery"})
    # resent segments presumed lost again (tcp_mark_skb_lost)
    lost_retransmits: int = field(metadata={"linux": "TCPLostRetransmit"})
    # tail loss probes sent (RFC 8985 §7)
    loss_probes: int = field(metadata={"linux": "TCPLossProbes"})
    # losses a probe's retransmission repaired, answered by one window reduction (RFC 8985 §7.4)
    loss_probe_recoveries: int = field(metadata={"linux": "TCPLossProbeRecovery"})
    keepalive_probes: int = field(metadata={"linux": "TCPKeepAlive"})
    # zero-window probes sent (RFC 9293 §3.8.6.1)
    window_probes: int = field(metadata={"linux": "TCPWinProbe"})
    # segments dropped by PAWS (RFC 7323 §5.3) and answered, in TIME-WAIT apart; old ACKs (below RCV.NXT) it
    # drops without an answer (Linux tcp_validate_incoming, tcp_timewait_state_process)
    paws_drops: int = field(metadata={"linux": "PAWSEstab"})
    time_wait_paws_drops: int = field(metadata={"linux": "PAWSTimewait"})
    paws_old_acks: int = field(metadata={"linux": "PAWSOldAck"})
    # SYN,ACKs (and RST,ACKs) in SYN-SENT whose TSecr echoes no TSval of ours since the first SYN
    paws_active_rejected: int = field(metadata={"linux": "PAWSActive"})
    # SYN_SENT/SYN_RECEIVED -> CLOSED or back to LISTEN
    attempt_fails: int = field(metadata={"linux": "AttemptFails"})
    # ESTABLISHED/CLOSE_WAIT -> CLOSED
    estab_resets: int = field(metadata={"linux": "EstabResets"})
    # out-of-order segments that met the queue's bounds
    ofo_drops: int = field(metadata={"linux": "TCPOFODrop"})
    # held back by the RFC 5961 §7 limit
    challenge_acks_skipped: int = field(metadata={"linux": "TCPACKSkippedChallenge"})
    # answers to unacceptable pure ACKs held back (500 ms)
    oow_acks_skipped: int = field(metadata={"linux": "TCPACKSkippedSeq"})
    # ... and those to segments PAWS dropped, and those in SYN-RECEIVED, TIME-WAIT and an orphaned
    # FIN-WAIT-2, each as Linux counts them (tcp_oow_rate_limited's callers)
    paws_acks_skipped: int = field(metadata={"linux": "TCPACKSkippedPAWS"})
    syn_recv_acks_skipped: int = field(metadata={"linux": "TCPACKSkippedSynRecv"})
    time_wait_acks_skipped: int = field(metadata={"linux": "TCPACKSkippedTimeWait"})
    fin_wait_2_acks_skipped: int = field(metadata={"linux": "TCPACKSkippedFinWait2"})
    # RSTs outside the window, dropped (RFC 5961 §3.2)
    rsts_out_of_window: int = field(metadata={"linux": "OutOfWindowRsts"})
    # D-SACK blocks from the peer: we resent needlessly
    dsacks_received: int = field(metadata={"linux": "TCPDSACKRecv"})
    # timeouts F-RTO found spurious (RFC 5682)
    spurious_rtos: int = field(metadata={"linux": "TCPSpuriousRTOs"})
    # timeouts that found the receiver had dropped data it SACKed (RFC 2018 §8)
    sack_renegings: int = field(metadata={"linux": "TCPSACKReneging"})
    # window reductions undone, by how Linux counts them: a fast recovery whose timestamps showed every resend
    # needless at its end (tcp_try_undo_recovery), at a partial ACK (tcp_try_undo_partial), one whose resends
    # all came back as D-SACKs (tcp_try_undo_dsack), and a timeout (tcp_try_undo_loss: timestamps or F-RTO)
    full_undos: int = field(metadata={"linux": "TCPFullUndo"})
    partial_undos: int = field(metadata={"linux": "TCPPartialUndo"})
    dsack_undos: int = field(metadata={"linux": "TCPDSACKUndo"})
    loss_undos: int = field(metadata={"linux": "TCPLossUndo"})
    # data arrived after the application closed: RST
    aborts_on_data: int = field(metadata={"linux": "TCPAbortOnData"})
    # segments that arrived with a CE mark (RFC 3168)
    ce_received: int = field(metadata={"linux": "TCPECNRcvCE"})
    # window reductions for an ECE echo (RFC 3168 §6.1.2)
    ecn_reductions: int = field(metadata={"linux": "TCPECNReductions"})
    # TIME_WAIT ended by a RST, RFC 1337's assassination
    time_wait_killed: int = field(metadata={"linux": "TWKilled"})
    # TIME_WAIT ended by a new SYN, RFC 6191
    time_wait_recycled: int = field(metadata={"linux": "TWRecycled"})
    # data dropped unacknowledged at the stack's memory limit
    rcvq_drops: int = field(metadata={"linux": "TCPRcvQDrop"})
    # segments past the window dropped: data waits to be read
    beyond_window: int = field(metadata={"linux": "BeyondWindow"})
    # in-order data met the zero window we offered
    zero_window_drops: int = field(metadata={"linux": "TCPZeroWindowDrop"})
    # out-of-order queues emptied under memory pressure
    ofo_pruned: int = field(metadata={"linux": "OfoPruned"})
    # a packet found the receive memory full: room was made (tcp_prune_queue), by collapsing packets or not
    prune_called: int = field(metadata={"linux": "PruneCalled"})
    # packets whose data was copied into compact ones to make room (tcp_collapse)
    rcv_collapsed: int = field(metadata={"linux": "TCPRcvCollapsed"})
    # no room could be made: the packet was dropped
    rcv_pruned: int = field(metadata={"linux": "RcvPruned"})
    # ACKs of out-of-order data held by SACK compression and sent as one, less that one (Linux tcp_event_ack_sent)
    ack_compressed: int = field(metadata={"linux": "TCPAckCompressed"})
    # path MTU probes sent (RFC 4821, stack/tcp/mtu_probing.py)
    mtu_probes: int = field(metadata={"linux": "TCPMTUPProbes"})
    # probes acknowledged: larger segments pass
    mtu_probe_successes: int = field(metadata={"linux": "TCPMTUPSuccess"})
    # probes lost
    mtu_probe_failures: int = field(metadata={"linux": "TCPMTUPFail"})

    def __init__(self) -> None:
        self.resets_out = 0
        self.challenge_acks = 0
        self.syn_challenges = 0
        self.out_of_window = 0
        self.timeouts = 0
        self.fast_retransmits = 0
        self.slow_start_retransmits = 0
        self.sack_recoveries = 0
        self.reno_recoveries = 0
        self.lost_retransmits = 0
        self.loss_probes = 0
        self.loss_probe_recoveries = 0
        self.keepalive_probes = 0
        self.window_probes = 0
        self.paws_drops = 0
        self.time_wait_paws_drops = 0
        self.paws_old_acks = 0
        self.paws_active_rejected = 0
        self.attempt_fails = 0
        self.estab_resets = 0
        self.ofo_drops = 0
        self.challenge_acks_skipped = 0
        self.oow_acks_skipped = 0
        self.paws_acks_skipped = 0
        self.syn_recv_acks_skipped = 0
        self.time_wait_acks_skipped = 0
        self.fin_wait_2_acks_skipped = 0
        self.rsts_out_of_window = 0
        self.dsacks_received = 0
        self.spurious_rtos = 0
        self.sack_renegings = 0
        self.full_undos = 0
        self.partial_undos = 0
        self.dsack_undos = 0
        self.loss_undos = 0
        self.aborts_on_data = 0
        self.ce_received = 0
        self.ecn_reductions = 0
        self.time_wait_killed = 0
        self.time_wait_recycled = 0
        self.rcvq_drops = 0
        self.beyond_window = 0
        self.zero_window_drops = 0
        self.ofo_pruned = 0
        self.prune_called = 0
        self.rcv_collapsed = 0
        self.rcv_pruned = 0
        self.ack_compressed = 0
        self.mtu_probes = 0
        self.mtu_probe_successes = 0
        self.mtu_probe_failures = 0

    def add(self, other: Events) -> None:
        """Add another connection's events to these, written out as the constructor is: compiled, each
        field is read and written natively."""
        self.resets_out += other.resets_out
        self.challenge_acks += other.challenge_acks
        self.syn_challenges += other.syn_challenges
        self.out_of_window += other.out_of_window
        self.timeouts += other.timeouts
        self.fast_retransmits += other.fast_retransmits
        self.slow_start_retransmits += other.slow_start_retransmits
        self.sack_recoveries += other.sack_recoveries
        self.reno_recoveries += other.reno_recoveries
        self.lost_retransmits += other.lost_retransmits
        self.loss_probes += other.loss_probes
        self.loss_probe_recoveries += other.loss_probe_recoveries
        self.keepalive_probes += other.keepalive_probes
        self.window_probes += other.window_probes
        self.paws_drops += other.paws_drops
        self.time_wait_paws_drops += other.time_wait_paws_drops
        self.paws_old_acks += other.paws_old_acks
        self.paws_active_rejected += other.paws_active_rejected
        self.attempt_fails += other.attempt_fails
        self.estab_resets += other.estab_resets
        self.ofo_drops += other.ofo_drops
        self.challenge_acks_skipped += other.challenge_acks_skipped
        self.oow_acks_skipped += other.oow_acks_skipped
        self.paws_acks_skipped += other.paws_acks_skipped
        self.syn_recv_acks_skipped += other.syn_recv_acks_skipped
        self.time_wait_acks_skipped += other.time_wait_acks_skipped
        self.fin_wait_2_acks_skipped += other.fin_wait_2_acks_skipped
        self.rsts_out_of_window += other.rsts_out_of_window
        self.dsacks_received += other.dsacks_received
        self.spurious_rtos += other.spurious_rtos
        self.sack_renegings += other.sack_renegings
        self.full_undos += other.full_undos
        self.partial_undos += other.partial_undos
        self.dsack_undos += other.dsack_undos
        self.loss_undos += other.loss_undos
        self.aborts_on_data += other.aborts_on_data
        self.ce_received += other.ce_received
        self.ecn_reductions += other.ecn_reductions
        self.time_wait_killed += other.time_wait_killed
        self.time_wait_recycled += other.time_wait_recycled
        self.rcvq_drops += other.rcvq_drops
        self.beyond_window += other.beyond_window
        self.zero_window_drops += other.zero_window_drops
        self.ofo_pruned += other.ofo_pruned
        self.prune_called += other.prune_called
        self.rcv_collapsed += other.rcv_collapsed
        self.rcv_pruned += other.rcv_pruned
        self.ack_compressed += other.ack_compressed
        self.mtu_probes += other.mtu_probes
        self.mtu_probe_successes += other.mtu_probe_successes
        self.mtu_probe_failures += other.mtu_probe_failures


@dataclass(init=False, slots=True)
class Counters:
    # segments received on this connection
    segs_in: int = field(metadata={"linux": "InSegsConn"})
    segs_out: int = field(metadata={"linux": "OutSegs"})
    retrans_segs: int = field(metadata={"linux": "RetransSegs"})
    # segments that took the header-prediction fast path repeating the send window (as Linux counts them):
    # in-order data segments and pure ACKs (stack/tcp/header_prediction.py)
    hp_hits: int = field(metadata={"linux": "TCPHPHits"})
    hp_acks: int = field(metadata={"linux": "TCPHPAcks"})
    # the rest, made at the first event (`events()`); None until then
    event_counts: Events | None = field(metadata={})

    def __init__(self) -> None:
        self.segs_in = 0
        self.segs_out = 0
        self.retrans_segs = 0
        self.hp_hits = 0
        self.hp_acks = 0
        self.event_counts = None

    def events(self) -> Events:
        """The event counters, to count one: made at the first."""
        events = self.event_counts
        if events is None:
            events = self.event_counts = Events()
        return events

    def events_seen(self) -> Events:
        """The event counters to read: zeros, not kept, while there have been none."""
        events = self.event_counts
        return Events() if events is None else events

    def by_linux_name(self) -> dict[str, int]:
        """Every counter under its Linux name, at 0 those never counted."""
        names = dict(zip(_LINUX_NAMES, _values(self), strict=True))
        names.update(zip(_EVENT_LINUX_NAMES, _event_values(self.events_seen()), strict=True))
        return names

    def add(self, other: Counters) -> None:
        """Add another connection's counters to these (a stack's total of its closed connections): written
        out, as the constructor, so that compiled it reads and writes each field natively (a loop over the
        names goes through getattr and setattr, 1.5 us for every connection that closes)."""
        self.segs_in += other.segs_in
        self.segs_out += other.segs_out
        self.retrans_segs += other.retrans_segs
        self.hp_hits += other.hp_hits
        self.hp_acks += other.hp_acks
        if other.event_counts is not None:
            self.events().add(other.event_counts)


_NAMES: Final = tuple(f.name for f in fields(Counters) if "linux" in f.metadata)
_LINUX_NAMES: Final = tuple(f.metadata["linux"] for f in fields(Counters) if "linux" in f.metadata)
_values: Final = attrgetter(*_NAMES)  # every counter in one call
_EVENT_LINUX_NAMES: Final = tuple(f.metadata["linux"] for f in fields(Events))
_event_values: Final = attrgetter(*(f.name for f in fields(Events)))

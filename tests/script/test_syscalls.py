"""The script runner's socket layer (stack/script/syscalls.py): message calls, flags and options."""

from __future__ import annotations

import pytest

from stack.script.errors import ScriptFailure, ScriptSkip
from stack.script.parser import parse
from stack.script.runner import Runner

ESTABLISHED = """
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
+0    > S. 0:0(0) ack 1 <mss 1460,nop,wscale 7>
+.1   < . 1:1(0) ack 1 win 257
+0    accept(3, ..., ...) = 4
"""
DATA_IN = "+0 < P. 1:1001(1000) ack 1 win 257\n+0 > . 1:1(0) ack 1001\n"


def run(text: str) -> Runner:
    runner = Runner(parse(text, "t.pkt"))
    runner.run()
    return runner


def recvmsg(size: int, inq: int | None) -> str:
    control = "" if inq is None else f", msg_control=[{{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data={inq}}}]"
    return f"+0 recvmsg(4, {{msg_name(...)=..., msg_iov(1)=[{{..., {size}}}], msg_flags=0{control}}}, 0) = {size}\n"


def test_recvmsg_tcp_inq_wrong_count_fails_with_the_actual_one():
    """tcp(7) TCP_INQ: the control message carries the bytes left in the receive queue."""
    with pytest.raises(ScriptFailure, match="TCP_CM_INQ=600"):
        run(ESTABLISHED + "+0 setsockopt(4, SOL_TCP, TCP_INQ, [1], 4) = 0\n" + DATA_IN + recvmsg(400, 500))


def test_recvmsg_without_tcp_inq_expecting_the_cmsg_fails():
    """Without TCP_INQ set, Linux puts no control message in the reply."""
    with pytest.raises(ScriptFailure, match="control messages none"):
        run(ESTABLISHED + DATA_IN + recvmsg(400, 600))


def test_recvmsg_tcp_inq_right_count_passes():
    run(ESTABLISHED + "+0 setsockopt(4, SOL_TCP, TCP_INQ, [1], 4) = 0\n" + DATA_IN + recvmsg(400, 600))


def test_sendmsg_without_iov_list_fails_as_a_script_error():
    with pytest.raises(ScriptFailure, match="msg_iov"):
        run(ESTABLISHED + "+0 sendmsg(4, {msg_flags=0}, 0) = 0\n")


def test_established_recvmsg_expecting_msg_trunc_fails_as_linux_never_sets_it():
    """tcp(7): a stream read is never truncated; Linux's tcp_recvmsg leaves msg_flags 0."""
    read = "+0 recvmsg(4, {{msg_iov(1)=[{{..., 10}}], msg_flags={}}}, 0) = 10\n"
    run(ESTABLISHED + DATA_IN + read.format(0))
    with pytest.raises(ScriptFailure, match="msg_flags=0"):
        run(ESTABLISHED + DATA_IN + read.format("MSG_TRUNC"))


def test_established_recvmsg_of_the_urgent_byte_sets_msg_oob():
    """Linux tcp_recv_urg: msg_flags MSG_OOB on the out-of-band read, MSG_TRUNC too with no room."""
    urgent = "+0 < P.U 1:11(10) ack 1 win 257 urg 4\n+0 > . 1:1(0) ack 11\n"
    read = "+0 recvmsg(4, {{msg_iov(1)=[{{..., {}}}], msg_flags={}}}, MSG_OOB) = {}\n"
    run(ESTABLISHED + urgent + read.format(1, "MSG_OOB", 1))
    run(ESTABLISHED + urgent + read.format(0, "MSG_OOB|MSG_TRUNC", 0))


def test_established_ioctl_fionbio_makes_reads_nonblocking():
    """ioctl(2) FIONBIO sets the file's O_NONBLOCK, as fcntl F_SETFL does."""
    text = "+0 ioctl(4, FIONBIO, [1]) = 0\n+0 read(4, ..., 10) = -1 EAGAIN (x)\n+0 fcntl(4, F_GETFL) = 0x802\n"
    run(ESTABLISHED + text)


def test_recv_dontwait_on_an_empty_queue_is_eagain_on_a_blocking_socket():
    """MSG_DONTWAIT (recv(2)) makes this one call non-blocking."""
    run(ESTABLISHED + "+0 recv(4, ..., 10, MSG_DONTWAIT) = -1 EAGAIN (Resource temporarily unavailable)\n")


def test_poll_wrong_revents_fails_with_the_actual_events():
    """Linux tcp_poll: an established socket with nothing to read is writable only."""
    with pytest.raises(ScriptFailure, match="revents=POLLOUT"):
        run(ESTABLISHED + "+0 poll([{fd=4, events=POLLIN|POLLOUT, revents=POLLIN}], 1, 0) = 1\n")


def test_poll_unknown_event_name_fails_as_a_script_error():
    with pytest.raises(ScriptFailure, match="POLLSOON"):
        run(ESTABLISHED + "+0 poll([{fd=4, events=POLLSOON, revents=0}], 1, 0) = 0\n")


def test_poll_unknown_revents_name_fails_as_a_script_error():
    """An event name the script expects back is checked before the call, as the ones it asks for are."""
    with pytest.raises(ScriptFailure, match="POLRDHUP"):
        run(ESTABLISHED + "+0 poll([{fd=4, events=POLLOUT, revents=POLLOUT|POLRDHUP}], 1, 0) = 1\n")


def test_poll_timeout_that_passes_before_the_scripted_return_fails():
    """A poll with a 100 ms timeout and nothing ready returns 0 after 100 ms, not when the script says."""
    with pytest.raises(ScriptFailure, match="returned at 0.200"):
        run(ESTABLISHED + "+0...0.5 poll([{fd=4, events=POLLIN, revents=0}], 1, 100) = 0\n")


EPOLL = "+0 epoll_create(1) = 5\n"


def test_epoll_wrong_event_fails_with_the_actual_one():
    """epoll_wait checks the first event reported against the script's, events and data (as packetdrill)."""
    with pytest.raises(ScriptFailure, match=r"actual:   \{events=EPOLLOUT, fd=4\}"):
        run(
            ESTABLISHED
            + EPOLL
            + "+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN|EPOLLOUT, fd=4}) = 0\n"
            + "+0 epoll_wait(5, {events=EPOLLIN|EPOLLOUT, fd=4}, 1, 0) = 1\n"
        )


def test_epoll_data_comes_back_as_the_member_registered():
    """epoll_event.data is a union: u64 and ptr read all 64 bits of what was registered, fd and u32 the low 32."""
    added = "+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLOUT, u64=0x100000007}) = 0\n"
    run(ESTABLISHED + EPOLL + added + "+0 epoll_wait(5, {events=EPOLLOUT, ptr=0x100000007}, 1, 0) = 1\n")
    run(ESTABLISHED + EPOLL + added + "+0 epoll_wait(5, {events=EPOLLOUT, u32=7}, 1, 0) = 1\n")
    with pytest.raises(ScriptFailure, match="u64=7"):
        run(ESTABLISHED + EPOLL + added + "+0 epoll_wait(5, {events=EPOLLOUT, u64=7}, 1, 0) = 1\n")


def test_epoll_level_triggered_interests_take_turns_when_maxevents_is_one():
    """Linux's ready list: a level-triggered interest reported goes behind the others still ready."""
    run(
        ESTABLISHED
        + "+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 6\n"
        + EPOLL
        + "+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLOUT, fd=4}) = 0\n"
        + "+0 epoll_ctl(5, EPOLL_CTL_ADD, 6, {events=EPOLLOUT, fd=6}) = 0\n"
        + "+0 epoll_wait(5, {events=EPOLLOUT, fd=4}, 1, 0) = 1\n"
        + "+0 epoll_wait(5, {events=EPOLLOUT|EPOLLHUP, fd=6}, 1, 0) = 1\n"
        + "+0 epoll_wait(5, {events=EPOLLOUT, fd=4}, 2, 0) = 2\n"
    )


def test_epoll_edge_triggered_reader_not_woken_by_a_segment_without_data():
    """Only new bytes wake the readers (Linux tcp_data_ready): a pure ACK after data that was read
    before the interest was added leaves an edge-triggered interest unreported."""
    run(
        ESTABLISHED
        + DATA_IN
        + "+0 read(4, ..., 1000) = 1000\n"
        + EPOLL
        + "+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN|EPOLLOUT|EPOLLET, fd=4}) = 0\n"
        + "+0 epoll_wait(5, {events=EPOLLOUT, fd=4}, 1, 0) = 1\n"
        + "+.1 < . 1001:1001(0) ack 1 win 257\n"
        + "+0 epoll_wait(5, {events=0, ptr=0}, 1, 0) = 0\n"
    )


def test_epoll_unknown_event_name_fails_as_a_script_error():
    with pytest.raises(ScriptFailure, match="EPOLLSOON"):
        run(ESTABLISHED + EPOLL + "+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLSOON, fd=4}) = 0\n")


def test_epoll_wait_on_a_socket_or_with_no_room_is_einval():
    """epoll_wait(2): EINVAL when the descriptor is not an epoll instance or maxevents is not positive."""
    run(
        ESTABLISHED
        + EPOLL
        + "+0 epoll_wait(4, {events=0, ptr=0}, 1, 0) = -1 EINVAL (Invalid argument)\n"
        + "+0 epoll_wait(5, {events=0, ptr=0}, 0, 0) = -1 EINVAL (Invalid argument)\n"
    )


@pytest.mark.parametrize(
    ("option", "value", "reported"),
    [("SO_SNDBUF", 21000, 42000), ("SO_SNDBUF", 1000, 4608), ("SO_RCVBUF", 1000, 2304), ("SO_RCVBUF", 10**6, 2000000)],
)
def test_buffer_size_reported_doubled_within_linux_bounds(option, value, reported):
    """socket(7): the kernel doubles SO_SNDBUF/SO_RCVBUF and never reports less than its minimum buffer."""
    run(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
        f"+0 setsockopt(3, SOL_SOCKET, {option}, [{value}], 4) = 0\n"
        f"+0 getsockopt(3, SOL_SOCKET, {option}, [{reported}], [4]) = 0\n"
    )


TIMESTAMPING = "+0 setsockopt(4, SOL_SOCKET, SO_TIMESTAMPING, [{}], 4) = 0\n"


def test_established_so_timestamping_receive_flag_skips():
    """Receive timestamps (SOF_TIMESTAMPING_RX_SOFTWARE) are not modelled: the script SKIPs, not passes."""
    with pytest.raises(ScriptSkip, match="SOF_TIMESTAMPING_RX_SOFTWARE"):
        run(ESTABLISHED + TIMESTAMPING.format("SOF_TIMESTAMPING_RX_SOFTWARE|SOF_TIMESTAMPING_SOFTWARE"))


def test_established_errqueue_read_with_room_for_the_packet_copy_skips():
    """Without OPT_TSONLY a report carries a copy of the packet, whose bytes are not modelled."""
    text = ESTABLISHED + TIMESTAMPING.format("SOF_TIMESTAMPING_TX_SCHED") + "+0 write(4, ..., 10) = 10\n"
    text += "+0 > P. 1:11(10) ack 1\n+0 recv(4, ..., 100, MSG_ERRQUEUE) = 0\n"
    with pytest.raises(ScriptSkip, match="packet a transmit timestamp carries"):
        run(text)


def test_established_errqueue_report_without_opt_tsonly_sets_msg_trunc():
    """ip_recv_error: a report whose packet copy does not fit the (empty) iovec is MSG_TRUNC."""
    text = ESTABLISHED + TIMESTAMPING.format("SOF_TIMESTAMPING_TX_SCHED") + "+0 write(4, ..., 10) = 10\n"
    text += "+0 > P. 1:11(10) ack 1\n"
    read = "+0 recvmsg(4, {{msg_iov(1)=[{{..., 0}}], msg_flags={}}}, MSG_ERRQUEUE) = 0\n"
    run(text + read.format("MSG_ERRQUEUE|MSG_TRUNC"))
    with pytest.raises(ScriptFailure, match="msg_flags=MSG_ERRQUEUE\\|MSG_TRUNC"):
        run(text + read.format("MSG_ERRQUEUE"))


@pytest.mark.parametrize(
    "call",
    [
        "write(4, ..., 100000000000)",
        "sendmsg(4, {msg_iov(2)=[{..., 60000000}, {..., 60000000}], msg_flags=0}, 0)",
    ],
)
def test_send_of_more_than_a_call_may_make_skips_without_allocating(call):
    """The runner makes the bytes a script sends: a count past its bound SKIPs, never exhausts memory."""
    with pytest.raises(ScriptSkip, match="at most"):
        run(ESTABLISHED + f"+0 {call} = 10\n")


def test_write_of_a_negative_count_is_a_script_error():
    with pytest.raises(ScriptFailure, match="of -5 bytes"):
        run(ESTABLISHED + "+0 write(4, ..., -5) = -1 EFAULT (x)\n")


@pytest.mark.parametrize(
    "call",
    [
        "read(4, ..., -1)",
        "recv(4, ..., -1, MSG_PEEK)",
        "splice(4, NULL, 6, NULL, -1, 0)",
    ],
)
def test_read_of_a_negative_count_is_a_script_error(call):
    """A negative count never reaches the core (where it would mean "everything" and overfill a pipe)."""
    setup = "+0 pipe([5, 6]) = 0\n" if call.startswith("splice") else ""
    with pytest.raises(ScriptFailure, match="of -1 bytes"):
        run(ESTABLISHED + setup + "+0 < P. 1:11(10) ack 1 win 257\n" + f"+0 {call} = 10\n")


def test_sendfile_at_a_negative_offset_is_einval():
    """sendfile(2) with an offset below 0: EINVAL (rw_verify_area), nothing is sent."""
    run(
        "`dd if=/dev/zero of=/tmp/f bs=5 count=1`\n" + ESTABLISHED + '+0 open("/tmp/f", O_RDONLY) = 5\n'
        "+0 sendfile(4, 5, [-1000000], 1000000) = -1 EINVAL (Invalid argument)\n"
    )


def test_established_ip_tos_other_byte_expected_fails_with_the_actual_one():
    """ip(7) IP_TOS marks the segments sent after it; a script expecting another byte fails."""
    text = ESTABLISHED + "+0 setsockopt(4, SOL_IP, IP_TOS, [0x48], 4) = 0\n+0 write(4, ..., 10) = 10\n"
    run(text + "+0 > [tos 0x48] P. 1:11(10) ack 1\n")
    with pytest.raises(ScriptFailure, match="TOS byte differs"):
        run(text + "+0 > [tos 0x40] P. 1:11(10) ack 1\n")

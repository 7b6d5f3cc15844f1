"""stack/samples.py: how py-spy's sampled stacks become shares of layers and functions (tools/profile-connections
and tools/profile-download --sample)."""

from __future__ import annotations

from pathlib import Path

from stack.samples import summarize_samples

# the frames every sample of `serve` starts with
ENTRY = ";".join(
    ("_run_module_as_main (<frozen runpy>:198)", "main (stack/cli.py:382)", "Runner.run (asyncio/runners.py:118)")
)
# frames the function tests share: the stack's flush, and a compiled function it calls
FLUSH = "Stack._flush (stack/aio/stack.py:617)"
SEGMENTS_TO_SEND = "CPyDef_connection___Connection___segments_to_send (__native_core.c:5)"


def _summary(tmp_path: Path, *stacks: tuple[str, int]):
    raw = tmp_path / "samples.txt"
    raw.write_text("".join(f"{ENTRY};{stack} {count}\n" for stack, count in stacks))
    return summarize_samples(str(raw), top=10)


def test_sample_counts_for_the_innermost_frame_that_tells_its_layer(tmp_path):
    """An inline helper (object.h) tells nothing, so the compiled function around it decides; a system call
    is the C library's read or write, any other libc function counts for the frame that called it; a
    sample waiting in epoll is idle, not counted."""
    core = "Stack._input (stack/aio/stack.py:524);CPyDef_connection___Connection___receive_segment (__native_core.c:9)"
    total, layers, _, _ = _summary(
        tmp_path,
        (f"{core};Py_DECREF (object.h:537)", 3),
        ("write_flush (stack/aio/batchio.py:73);writev (libc.so.6)", 2),
        ("parsed_segment (stack/wire/segment.py:150);malloc (libc.so.6)", 4),
        ("Handle__run (loop.c:70906);uv__io_poll (linux.c:1546)", 1),
        ("uv_run (core.c:464);uv__io_poll (linux.c:1546);epoll_pwait (libc.so.6)", 5),
    )
    assert total == 10
    assert layers == {"Python (interpreted)": 0.4, "compiled code": 0.3, "system calls": 0.2, "event loop": 0.1}


def test_sample_functions_include_callees_below_the_event_loop(tmp_path):
    """A function's share counts every sample it is on the stack of, once each; compiled functions are named
    by module (mypyc's CPyDef_module___Class___method); the frames that run the event loop and those above
    them are not listed. Equal shares are listed by name."""
    _, _, functions, _ = _summary(
        tmp_path,
        (f"{FLUSH};{SEGMENTS_TO_SEND};{SEGMENTS_TO_SEND}", 3),
        (f"{FLUSH};_fill (stack/wire/codec.py:240)", 1),
        ("Stack._input (stack/aio/stack.py:509)", 1),
    )
    assert functions == [
        ("Stack._flush (stack/aio/stack.py)", 0.8),
        ("connection.Connection.segments_to_send (compiled)", 0.6),
        ("Stack._input (stack/aio/stack.py)", 0.2),
        ("_fill (stack/wire/codec.py)", 0.2),
    ]


def test_sample_own_time_counts_for_the_innermost_function_named(tmp_path):
    """A function's own share counts the samples it is the innermost named frame of: a system call or an
    inline helper it runs is its own time, what a function it calls runs is that function's."""
    _, _, _, own = _summary(
        tmp_path,
        (f"{FLUSH};{SEGMENTS_TO_SEND};Py_DECREF (object.h:537)", 3),
        (f"{FLUSH};write_flush (stack/aio/batchio.py:73);writev (libc.so.6)", 2),
        (FLUSH, 1),
    )
    assert own == [
        ("connection.Connection.segments_to_send (compiled)", 0.5),
        ("write_flush (stack/aio/batchio.py)", 2 / 6),
        ("Stack._flush (stack/aio/stack.py)", 1 / 6),
    ]

"""`tcpstack serve --workers N`: one process per queue of an IFF_MULTI_QUEUE TUN device.

The kernel spreads flows over the queues by a hash of their addresses and ports, and keeps a flow on the
queue that answered it, as SO_REUSEPORT spreads connections over kernel sockets: each worker owns the
connections that reach its queue, with its own stack and the same listeners. The parent only forwards
signals and answers the control socket, merging what each worker's own control socket says.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from collections import Counter

from stack import control, core_build


def worker_control_path(path: str, index: int) -> str:
    """Worker i's control socket beside the parent's (not *.sock: `netstat` finds the parent's alone)."""
    return f"{path}.w{index}"


class WorkerSet:
    """Answers the control socket for all workers: netstat rows of every worker (each with its
    `worker` index), counters summed."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.counters: Counter[str] = Counter()

    def snapshot(self, closed: bool = False) -> list[dict]:
        rows = []
        options = {"closed": True} if closed else {}
        for index, path in enumerate(self.paths):
            for row in control.request(path, "netstat", **options):
                row["worker"] = index
                rows.append(row)
        return rows

    def stats(self) -> dict[str, int]:
        totals = Counter(self.counters)
        for path in self.paths:
            totals.update(control.request(path, "stats"))
        totals["Workers"] = len(self.paths)
        return dict(sorted(totals.items()))


def serve_workers(args) -> int:
    """Open the queues, fork one worker per queue, then answer control requests until SIGINT/SIGTERM."""
    from stack.aio.tun import TunDevice
    from stack.serve import note, note_addresses_reached_elsewhere, offload_wanted

    control_path = args.control or control.default_path()
    control.claim(control_path)
    offload = offload_wanted(args)
    if offload and args.fault is not None:
        offload = False
        note("offloads off: --fault acts on wire-sized packets")
    note_addresses_reached_elsewhere(args.addr, args.tun)
    queues = TunDevice.queues(args.tun, args.addr, args.peer, args.mtu, args.workers, offload)
    if queues[0].offload_note is not None:
        note(queues[0].offload_note)
    paths = [worker_control_path(control_path, i) for i in range(len(queues))]
    children = []
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()  # what the workers inherit stays shared with this process: no collection there writes to it
    for index, queue in enumerate(queues):
        pid = os.fork()
        if pid == 0:
            for other in queues:
                if other is not queue:
                    other.close()  # this process's handle only: the queue lives on in its worker
            os._exit(_worker(args, queue, index, paths[index]))
        children.append(pid)
    for queue in queues:
        queue.close()  # each queue lives on in its worker
    try:
        return asyncio.run(_parent(args, control_path, paths, children))
    finally:
        _stop(children)


def _worker(args, queue, index: int, path: str) -> int:
    import uvloop

    from stack.serve import serve_on

    for sig in (signal.SIGINT, signal.SIGHUP):  # the parent stops the workers with SIGTERM
        signal.signal(sig, signal.SIG_IGN)
    try:
        return uvloop.run(serve_on(args, path, queue=queue, worker=index))
    except BaseException as exc:  # a worker must never fall back into the parent's code
        sys.stderr.write(f"tcpstack: worker {index}: {exc}\n")
        return 1


async def _parent(args, control_path: str, paths: list[str], children: list[int]) -> int:
    from stack import limits
    from stack.serve import stop_signals
    from stack.services import DEFAULT_PORTS

    loop = asyncio.get_running_loop()
    for path in paths:  # every worker up, or the first one that exited
        while not os.path.exists(path):
            for pid in children:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    sys.stderr.write("tcpstack: a worker exited while starting\n")
                    return 1
            await asyncio.sleep(0.02)
    server = await control.serve_control(control_path, WorkerSet(paths), limits.control_clients(args))
    stop = asyncio.Event()
    for sig in stop_signals():
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch(children, stop))
    services = ", ".join(f"{n}:{p}" for n, p in (args.services or list(DEFAULT_PORTS.items())))
    where = f"at {' and '.join(args.addr)} on {args.tun} with {len(paths)} workers"
    where += f" (control {control_path}, core {core_build.BUILD})"
    print(f"tcpstack: serving {services} {where}", flush=True)
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        control.stop_control(server, control_path)
    return 0


async def _watch(children: list[int], stop: asyncio.Event) -> None:
    """A worker that dies takes the service down with it: its flows would otherwise hang."""
    while True:
        for pid in children:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                sys.stderr.write(f"tcpstack: worker {pid} exited; stopping\n")
                children.remove(pid)
                stop.set()
                return
        await asyncio.sleep(0.2)


def _stop(children: list[int]) -> None:
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

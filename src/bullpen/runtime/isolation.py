"""Isolated tasks: a pool of child processes, each running one job at a time for the worker.

The worker's event loop only waits on a pipe while a child runs a handler, so it keeps renewing
locks whatever the handler does (hold the GIL in C code, crash the interpreter). The child sends
the handler's log lines and progress as they come, then its result or its error.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import multiprocessing
import signal
import threading
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

from bullpen.adapter import JobRecord
from bullpen.definitions.task import Task
from bullpen.errors import (
    IsolatedTaskCrashError,
    IsolatedTaskError,
    JobCancelledError,
    UnrecoverableJobError,
)
from bullpen.runtime.context import JobContext
from bullpen.runtime.stop import die_with_parent
from bullpen.settings import Settings
from bullpen.telemetry import remote_context

# Not fork: the worker has threads and an event loop that a forked child must not inherit.
START_METHOD = "spawn"
STOP_WAIT_S = 5.0
# How often an isolated `async def` handler's process looks for a cancel request.
CANCEL_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class ChildJob:
    """What a child needs to run one job: the handler by name, the data, the job's record."""

    module: str
    qualname: str
    arity: int
    is_async: bool
    data: Any
    job: JobRecord
    worker_id: str
    settings: Settings
    trace_carrier: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class _Signals:
    """Shared with a child for its life: `cancel` is what ctx.cancelled reads; `interrupt`
    (a cancel, not a shutdown notice) also cancels an `async def` handler's task."""

    cancel: Event
    interrupt: Event

    def set(self, interrupt: bool) -> None:
        if interrupt:
            self.interrupt.set()
        self.cancel.set()

    def clear(self) -> None:
        self.cancel.clear()
        self.interrupt.clear()


class ChildContext:
    """`ctx` in an isolated handler: the job, its log and progress, the cancel signal. The
    worker's Redis client stays in the worker: a handler that needs Redis opens its own."""

    def __init__(self, conn: Connection, request: ChildJob, cancel: Event) -> None:
        self._conn = conn
        self._cancel = cancel
        self.job = request.job
        self.worker_id = request.worker_id
        self.settings = request.settings

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled, or the worker is about to abandon it."""
        return self._cancel.is_set()

    def raise_if_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelledError

    def log(self, line: str) -> None:
        self._conn.send(("log", str(line)))

    def progress(self, value: Any) -> None:
        self._conn.send(("progress", value))

    @property
    def redis(self) -> Any:
        raise IsolatedTaskError("ctx.redis is not available in an isolated task (it runs in a "
                                "child process); open a client of your own there")


def _resolve(module: str, qualname: str) -> Any:
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return inspect.unwrap(found)  # the function under isolated() or a decorator


async def _cancellable(handler: Any, args: tuple[Any, ...], interrupt: Event) -> Any:
    """An `async def` handler, its task cancelled on a cancel request (as in the worker)."""
    task = asyncio.ensure_future(handler(*args))
    while not task.done():
        await asyncio.wait({task}, timeout=CANCEL_POLL_S)
        if interrupt.is_set() and not task.done():
            task.cancel()
            break
    try:
        return await task
    except asyncio.CancelledError:
        raise JobCancelledError from None


def _run(conn: Connection, request: ChildJob, signals: _Signals) -> tuple[Any, ...]:
    try:
        handler = _resolve(request.module, request.qualname)
        args = (request.data, ChildContext(conn, request, signals.cancel))[: request.arity]
        with remote_context(request.trace_carrier):
            result = (asyncio.run(_cancellable(handler, args, signals.interrupt))
                      if request.is_async else handler(*args))
        return ("result", result)
    except BaseException as exc:  # every failure (SystemExit too) is the job's: sent to the worker
        return ("error", str(exc), traceback.format_exc(),
                isinstance(exc, UnrecoverableJobError), isinstance(exc, JobCancelledError))


def child_main(conn: Connection, signals: _Signals) -> None:
    """A child's loop: run the jobs the worker sends until it sends None or goes away."""
    # Ctrl-C and group signals reach the children too; the worker decides when they stop.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    die_with_parent(signal.SIGKILL)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        reply = _run(conn, request, signals)
        try:
            conn.send(reply)
        except Exception as exc:  # e.g. a result that cannot be pickled
            conn.send(("error", f"the handler's result cannot be sent to the worker: {exc}",
                       "", False, False))


class _Child:
    def __init__(self, context: Any) -> None:
        self.conn, child_end = context.Pipe()
        self.signals = _Signals(context.Event(), context.Event())
        self.process = context.Process(target=child_main, args=(child_end, self.signals),
                                       daemon=True, name="bullpen-isolated")
        self.process.start()
        child_end.close()
        self.jobs = 0

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(STOP_WAIT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(STOP_WAIT_S)
        self.conn.close()


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class IsolatedPool:
    """Child processes for isolated tasks: started on demand, at most one job each at a time,
    replaced after their task's `max_jobs_per_child` jobs or when they die."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context(START_METHOD)
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._lock = threading.Lock()

    def run(self, task: Task, job: JobRecord, ctx: JobContext,
            trace_carrier: dict[str, str] | None = None) -> Any:
        """Run `task` for `job` in a child; blocks (call it from a thread). Raises the handler's
        error, or IsolatedTaskCrashError when the child dies."""
        assert task.isolation is not None
        function = task.isolation.handler
        request = ChildJob(function.__module__, function.__qualname__, task.arity,
                           task.is_async, job.data, job, ctx.worker_id, ctx.settings,
                           trace_carrier)
        child = self._acquire()
        child.signals.clear()
        ctx._on_cancel = child.signals.set
        cancel = ctx.cancellation
        if cancel is not None:  # requested before the line above: the child must see it too
            child.signals.set(not cancel.shutdown)
        try:
            reply = self._exchange(child, request, ctx)
        except (EOFError, OSError):
            self._discard(child)
            child.process.join(STOP_WAIT_S)
            raise IsolatedTaskCrashError(
                f"isolated task {task.name!r}: its process (pid {child.process.pid}) "
                f"{_exit_text(child.process.exitcode)} while running job {job.id}; this attempt "
                "failed and a new process takes the next job") from None
        finally:
            ctx._on_cancel = None
        self._release(child, task.isolation.max_jobs_per_child)
        if reply[0] == "result":
            return reply[1]
        _, message, child_traceback, unrecoverable, cancelled = reply
        if cancelled and ctx.cancellation is not None:
            raise ctx.cancellation
        error: Exception = (UnrecoverableJobError(message) if unrecoverable
                            else IsolatedTaskError(message))
        if child_traceback:
            error.add_note(f"In the isolated task's process:\n{child_traceback}")
        raise error

    def _exchange(self, child: _Child, request: ChildJob, ctx: JobContext) -> tuple[Any, ...]:
        child.conn.send(request)
        while True:
            message = child.conn.recv()
            if message[0] == "log":
                ctx.log(message[1])
            elif message[0] == "progress":
                ctx.progress(message[1])
            else:
                return tuple(message)

    def _acquire(self) -> _Child:
        with self._lock:
            child = self._idle.pop() if self._idle else None
        if child is None or not child.process.is_alive():
            child = _Child(self._context)
        with self._lock:
            self._busy.add(child)
        return child

    def _release(self, child: _Child, max_jobs: int) -> None:
        child.jobs += 1
        with self._lock:
            self._busy.discard(child)
            if child.jobs < max_jobs:
                self._idle.append(child)
                return
        child.stop()

    def _discard(self, child: _Child) -> None:
        with self._lock:
            self._busy.discard(child)
        child.conn.close()

    def close(self) -> None:
        """Stop every child; a busy one (its job outlived the shutdown timeout) is killed."""
        with self._lock:
            idle, busy = list(self._idle), list(self._busy)
            self._idle.clear()
            self._busy.clear()
        for child in busy:
            child.process.kill()
        for child in idle + busy:
            child.stop()

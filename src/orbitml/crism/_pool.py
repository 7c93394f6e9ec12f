"""Persistent worker threads for the CRISM kernels.

Every parallel stage used to start its own ``ThreadPoolExecutor``; starting and joining two threads
costs about 0.8 ms on a shared virtual machine, and a training run or a scene passes through a dozen
such stages.  :func:`parallel_map` hands the work to one long-lived pool per thread count instead.

* Each calling thread has its own pools (one per thread count), so concurrent callers (dask
  worker threads, say) each get the workers they ask for, as before; a pool goes when its thread
  ends (its thread-local storage is freed, and an executor's workers exit once it is collected).
* Work submitted from inside a pool worker runs serially in that worker (a nested map waiting on the
  same pool could otherwise wait for itself).
* A process forked after the pool started (multiprocessing, some dask schedulers) gets a new pool:
  the parent's threads do not exist in the child.
* Results never depend on the thread count: callers split their work the same way for any count.
* :func:`in_background` runs one call on a persistent background worker of the caller while the
  caller goes on with other work (the training's refit statistics beside its serial weight fit).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_local = threading.local()  # per calling thread: its pools, and whether it is a pool worker


def _pool(nthreads: int) -> ThreadPoolExecutor:
    pools = getattr(_local, "pools", None)
    if pools is None:
        pools = _local.pools = {}
    pid = os.getpid()
    entry = pools.get(nthreads)
    if entry is None or entry[0] != pid:
        entry = pools[nthreads] = (pid, ThreadPoolExecutor(nthreads, thread_name_prefix="orbitml-crism"))
    return entry[1]


def _background() -> ThreadPoolExecutor:
    entry = getattr(_local, "background", None)
    if entry is None or entry[0] != os.getpid():
        entry = _local.background = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="orbitml-crism-bg"))
    return entry[1]


def in_background(fn: Callable[..., R], *args, **kwargs) -> Future:
    """``fn(*args, **kwargs)`` started on the calling thread's background worker (one persistent
    thread, created on first use); the returned future gives its result or raises its exception.
    The worker is not a pool worker: a :func:`parallel_map` inside ``fn`` gets its own workers.
    From inside a pool worker the call runs at once, serially, and the future is already done."""
    if in_worker():
        f: Future = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except Exception as exc:  # handed to the caller through the future
            f.set_exception(exc)
        return f
    return _background().submit(fn, *args, **kwargs)


def in_worker() -> bool:
    """Whether the calling thread is one of this module's pool workers."""
    return getattr(_local, "inside", False)


def parallel_map(fn: Callable[[T], R], items: Iterable[T], nthreads: int) -> list[R]:
    """``[fn(x) for x in items]`` on ``nthreads`` persistent workers (in order; the first
    exception raised by ``fn`` propagates, after every item has finished)."""
    items = list(items)
    if nthreads <= 1 or len(items) <= 1 or in_worker():
        return [fn(x) for x in items]

    def run(x):
        _local.inside = True
        try:
            return fn(x)
        finally:
            _local.inside = False

    futures = [_pool(min(nthreads, len(items))).submit(run, x) for x in items]
    errors = [f.exception() for f in futures]  # waits for all: none left running on return
    for e in errors:
        if e is not None:
            raise e
    return [f.result() for f in futures]

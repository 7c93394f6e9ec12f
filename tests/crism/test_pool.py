"""The persistent worker pools of the CRISM kernels (orbitml.crism._pool)."""

from __future__ import annotations

import threading

import pytest

from orbitml.crism import _pool


def test_results_in_order_on_worker_threads_reused_across_calls():
    main = threading.get_ident()
    seen: list[set[int]] = []
    for _ in range(3):
        idents = set()
        out = _pool.parallel_map(lambda x, s=idents: (s.add(threading.get_ident()), x * x)[1], range(20), 2)
        assert out == [x * x for x in range(20)]
        assert main not in idents and 1 <= len(idents) <= 2
        seen.append(idents)
    assert len(set().union(*seen)) <= 2  # the same two workers in every call: no new threads started


def test_serial_for_one_thread_one_item_and_inside_a_worker():
    main = threading.get_ident()
    assert _pool.parallel_map(lambda x: threading.get_ident(), range(4), 1) == [main] * 4
    assert _pool.parallel_map(lambda x: threading.get_ident(), [0], 4) == [main]

    def outer(x):  # a nested map runs in the worker itself (it would otherwise wait on its own pool)
        me = threading.get_ident()
        assert _pool.in_worker()
        return all(t == me for t in _pool.parallel_map(lambda y: threading.get_ident(), range(6), 2))

    assert _pool.parallel_map(outer, range(4), 2) == [True] * 4
    assert not _pool.in_worker()


def test_first_error_raised_after_all_items_ran():
    done = []

    def f(x):
        if x == 3:
            raise ValueError("item 3")
        done.append(x)
        return x

    with pytest.raises(ValueError, match="item 3"):
        _pool.parallel_map(f, range(10), 2)
    assert sorted(done) == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_each_calling_thread_has_its_own_workers():
    got = {}
    both = threading.Barrier(2)  # both callers (so both pools' workers) alive until both maps ran:
    # a thread id can be reused once its thread has ended

    def caller(name):
        got[name] = set(_pool.parallel_map(lambda x: threading.get_ident(), range(8), 2))
        both.wait(timeout=30)

    ts = [threading.Thread(target=caller, args=(n,)) for n in "ab"]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert got["a"] and got["b"] and not (got["a"] & got["b"])


def test_in_background_runs_beside_the_caller_and_hands_back_result_or_error():
    main = threading.get_ident()
    started, release = threading.Event(), threading.Event()

    def job(x):
        started.set()
        assert release.wait(timeout=30)  # the caller goes on while this waits
        pair = threading.Barrier(2)  # each item waits for the other: two workers must run them
        inner = set(_pool.parallel_map(lambda y: (pair.wait(timeout=30), threading.get_ident())[1], range(2), 2))
        return threading.get_ident(), inner, x * 2

    fut = _pool.in_background(job, 21)
    assert started.wait(timeout=30) and not fut.done()
    release.set()
    me, inner, val = fut.result(timeout=30)
    assert val == 42 and me != main
    assert me not in inner and len(inner) == 2  # a map inside gets its own two workers

    def bad():
        raise ValueError("in the background")

    with pytest.raises(ValueError, match="in the background"):
        _pool.in_background(bad).result(timeout=30)


def test_in_background_inside_a_pool_worker_runs_at_once():
    def outer(x):
        fut = _pool.in_background(threading.get_ident)
        return fut.done() and fut.result() == threading.get_ident()

    assert _pool.parallel_map(outer, range(4), 2) == [True] * 4

"""The garbage collector during batches (engine.runner.batch_gc, docs/decisions.md): paused inside a batch,
running again after it, even when the batch fails; with `freeze_gc`, what outlives a batch is frozen.
The meaning of a run never depends on it."""

from __future__ import annotations

import gc

import pytest

from engine.runner import Runner, batch_gc
from engine.store import Store

from .engine_helpers import DAY, T0, journey, line
from .test_store_text import SENDER  # a journey that sends on entry and moves on `go`


def _runner(path, freeze: bool) -> Runner:
    cj = journey(SENDER)
    store = Store(path)
    store.register(cj, {})
    return Runner(store, [cj], batch_size=3, freeze_gc=freeze)


@pytest.mark.parametrize("freeze", [False, True])
def test_the_collector_is_paused_inside_each_batch_and_runs_after_it(tmp_path, freeze):
    runner = _runner(tmp_path / "s.db", freeze)
    seen: list[bool] = []
    real = runner._run_batch

    def watched(batch, source):
        seen.append(gc.isenabled())
        return real(batch, source)

    runner._run_batch = watched  # type: ignore[method-assign]
    frozen = gc.get_freeze_count()
    try:
        summary = runner.run_lines([line(f"e{i}", "go", T0 + i, lead=f"L{i}") for i in range(7)])
        assert summary.applied == 7 and seen == [False, False, False]  # 3 batches, each with the collector paused
        assert gc.isenabled()
        assert (gc.get_freeze_count() > frozen) is freeze
        runner.tick(T0 + DAY)
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        runner.store.close()


def test_a_failing_batch_leaves_the_collector_running():
    with pytest.raises(RuntimeError):
        with batch_gc(freeze=True):
            assert not gc.isenabled()
            raise RuntimeError("a failed write")
    assert gc.isenabled()
    gc.unfreeze()


def test_a_caller_that_paused_the_collector_keeps_it_paused():
    gc.disable()
    try:
        with batch_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_results_do_not_depend_on_freezing(tmp_path):
    lines = [line(f"e{i}", "go", T0 + i, lead=f"L{i % 4}") for i in range(10)]
    dumps = []
    for freeze in (False, True):
        runner = _runner(tmp_path / f"{freeze}.db", freeze)
        try:
            runner.run_lines(lines)
            runner.tick(T0 + DAY)
            dumps.append(runner.store.dump())
        finally:
            gc.unfreeze()
            runner.store.close()
    assert dumps[0] == dumps[1]

"""The step loop without the GIL, numba strategies (issue #13), compiled queue models (issue #17).

* A compiled strategy's backtest runs in a thread while another thread holds the GIL (a huge switch interval:
  it never lets go while it counts): the backtest still decides, so its loop runs without the GIL.
* ``NumbaStrategy``: ``numba_grid`` (a numba ``@cfunc``) gives GridMaker's orders, fills, positions and PnL.
* Compiled queue models (``QueueModel.compiled()``) fill as their Python forms on the GOOG day, step for step.
The numba tests skip when numba is not installed (the ``numba`` extra; ``dev`` installs it).
"""
import sys
import threading

import numpy as np
import pandas as pd
import pytest

import lob
from lob.data import lobster_sample
from lob.errors import ConfigError
from lob.mm import GridMaker
from lob.queue import models as qm
from lob.queue._compiled import CompiledProbQueueModel, CompiledQueueModel, CPowerLogQueueModel
from lob.replay import DECIDE_SIGNATURE, NumbaStrategy
from lob.replay.backtest import Backtest, Fees, lobster_events

try:
    from numba import carray, cfunc
except ImportError:                       # the optional extra
    cfunc = None
needs_numba = pytest.mark.skipif(cfunc is None, reason="numba is not installed (pip install lobkit[numba])")

KW = dict(latency=200_000, fees=Fees(maker_bps=-0.2, taker_bps=0.3), step_ns=100_000_000, progress=False)
GRID = dict(levels=3, spacing_ticks=5, size=100, max_position=500)


@pytest.fixture(scope="module")
def goog():
    return lobster_events(*lobster_sample(10))[0]


def _same(a, b):
    for part in ("orders", "fills", "positions", "pnl"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part), obj=part)


# ------------------------------------------------------------------------------------------------
# numba strategies
# ------------------------------------------------------------------------------------------------
@needs_numba
@pytest.mark.parametrize("impact", ["full", "consume", "off"])
def test_numba_grid_is_gridmaker_on_the_goog_day(goog, impact):
    from lob.replay.numba_strategy import numba_grid

    ref = Backtest(GridMaker(**GRID), goog, impact=impact, **KW).run()
    nb = numba_grid(**GRID)
    res = Backtest(nb, goog, impact=impact, **KW).run()
    assert res.summary["compiled"] and res.summary["orders"] > 1000 and res.summary["fills"] > 1000
    _same(ref, res)
    assert res.summary == ref.summary
    assert nb.state[0] == 1.0 and nb.state[2] > 10           # has_center, recenters


def _watch_fn(now, position, book, depth, opens, n_open, intents, cap, state):
    # a strategy that only counts its decisions and keeps the last decision time
    s = carray(state, (2,))
    s[0] += 1.0
    s[1] = now
    return 0


_watch = cfunc(DECIDE_SIGNATURE)(_watch_fn) if cfunc is not None else None


def _run_with_a_gil_holder(strategy, events, split, step_ns, total, need=200, bound=20_000_000):
    """Run the backtest in this thread; once its first chunk is done, another thread takes the GIL and keeps
    it (switch interval 1000 s) while it counts, until the loop made ``need`` more decisions or all ``total``
    (or ``bound`` iterations: the backtest stalled)."""
    seen, mark = {}, [0]
    decisions = lambda: bt._loop.decisions        # a C field of the loop, read with the GIL

    def count():
        # wait, GIL released, for the loop's next decision (it is then in run_chunk's nogil loop) ...
        tick = threading.Event()
        for _ in range(60_000):
            if decisions() > mark[0]:
                break
            tick.wait(0.001)
        # ... then keep the GIL while counting
        start = decisions()
        i = 0
        while i < bound and decisions() < start + need and decisions() < total:
            i += 1
        seen.update(iterations=i, decisions=decisions() - start)

    counter = threading.Thread(target=count)

    def chunks():
        yield events[:split]
        mark[0] = decisions()
        sys.setswitchinterval(1000.0)       # the counter, once it has the GIL, keeps it
        counter.start()                     # it gets the GIL when this thread lets go: in run_chunk's nogil loop
        yield events[split:]

    bt = Backtest(strategy, chunks(), step_ns=step_ns, progress=False)
    old = sys.getswitchinterval()
    try:
        res = bt.run()
    finally:
        sys.setswitchinterval(old)
    counter.join()
    return res, seen


STRATEGIES = {"numba": lambda: NumbaStrategy(_watch, state=np.zeros(2)),
              "GridMaker": lambda: GridMaker(**GRID)}


@pytest.mark.parametrize("name", [pytest.param("numba", marks=needs_numba), "GridMaker"])
def test_a_compiled_backtest_runs_while_another_thread_holds_the_gil(goog, name):
    step_ns, split = 10_000, 20_000
    ref = Backtest(STRATEGIES[name](), goog, step_ns=step_ns, progress=False).run()
    total = ref.summary["decisions"]
    assert total > 10_000
    conclusive = []
    for _ in range(5):                       # bounded: an attempt where the counter started late is inconclusive
        res, seen = _run_with_a_gil_holder(STRATEGIES[name](), goog, split, step_ns, total)
        # never a stall: with the loop holding or waiting for the GIL the counter would run to its bound
        assert seen["iterations"] < 20_000_000, seen
        assert res.summary == ref.summary
        _same(ref, res)
        if seen["decisions"] >= 200:
            conclusive.append(seen)
            break
    assert conclusive, "the counting thread never held the GIL while the backtest decided"
    # both progressed: the backtest made its decisions while the counter, holding the GIL, counted (how the two
    # interleave is up to the OS scheduler: no assertion on it)
    assert conclusive[0]["iterations"] > 0


def test_builtin_maker_in_a_thread_gives_the_same_answers(goog):
    ref = Backtest(GridMaker(**GRID), goog, **KW).run()
    out, counter = {}, [0]
    t = threading.Thread(target=lambda: out.update(r=Backtest(GridMaker(**GRID), goog, **KW).run()))
    t.start()
    while t.is_alive() and counter[0] < 10_000_000:
        counter[0] += 1
    t.join()
    assert counter[0] > 0
    _same(ref, out["r"])


@needs_numba
def test_numba_strategy_checks_its_function_and_intents(goog):
    @cfunc("int32(int64, int64)")
    def wrong(a, b):
        return 0

    with pytest.raises(ConfigError, match="signature"):
        NumbaStrategy(wrong)
    with pytest.raises(ConfigError, match="decide must be a numba"):
        NumbaStrategy(lambda *a: 0)
    with pytest.raises(ConfigError, match="state"):
        NumbaStrategy(_watch, state=np.zeros(3, np.int64))

    @cfunc(DECIDE_SIGNATURE)
    def bad_side(now, position, book, depth, opens, n_open, intents, cap, state):
        out = carray(intents, (cap, 8))
        out[0, :] = 0
        out[0, 2] = 7                      # side 7
        out[0, 3] = 100
        out[0, 4] = 1
        return 1

    with pytest.raises(ConfigError, match="intent row 0.*'side': 7"):
        Backtest(NumbaStrategy(bad_side), goog[:5000], **KW).run()

    @cfunc(DECIDE_SIGNATURE)
    def too_many(now, position, book, depth, opens, n_open, intents, cap, state):
        return cap + 1

    with pytest.raises(ConfigError, match="returned 65"):
        Backtest(NumbaStrategy(too_many), goog[:5000], **KW).run()


# ------------------------------------------------------------------------------------------------
# compiled queue models
# ------------------------------------------------------------------------------------------------
class _Py:
    """The model through the Python protocol only (the loop calls it with the GIL)."""

    def __init__(self, m):
        self.m = m

    def new_order(self, st, q):
        return self.m.new_order(st, q)

    def trade(self, st, q):
        return self.m.trade(st, q)

    def depth(self, st, p, n):
        return self.m.depth(st, p, n)


MODELS = {
    "risk-averse": qm.RiskAverseQueueModel, "power1": lambda: qm.PowerProbQueueFunc(1),
    "power2": lambda: qm.PowerProbQueueFunc2(2), "power3": lambda: qm.PowerProbQueueFunc3(3),
    "log": qm.LogProbQueueFunc, "log2": qm.LogProbQueueFunc2,
    "fitted": lambda: qm.FittedProbQueueModel(0.3, -1.5, 0.1),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_queue_models_fill_as_their_python_forms(goog, name):
    model = MODELS[name]()
    form = model.compiled()
    assert isinstance(form, CompiledQueueModel)
    impact = "consume" if name in ("risk-averse", "power2", "log", "fitted") else "off"
    bt = Backtest(GridMaker(**GRID), goog, impact=impact, queue_model=model, **KW)
    assert bt._loop_queue is not model and isinstance(bt._loop_queue, CompiledQueueModel)
    c = bt.run()
    py = Backtest(GridMaker(**GRID), goog, impact=impact, queue_model=_Py(model), **KW).run()
    assert c.summary["fills"] > 500
    _same(py, c)
    # the compiled model object itself plugs in as well
    _same(c, Backtest(GridMaker(**GRID), goog, impact=impact, queue_model=form, **KW).run())


def test_models_differ_so_the_comparison_can_fail(goog):
    a = Backtest(GridMaker(**GRID), goog, impact="off", queue_model=qm.RiskAverseQueueModel(), **KW).run()
    b = Backtest(GridMaker(**GRID), goog, impact="off", queue_model=qm.PowerProbQueueFunc(1), **KW).run()
    assert len(a.fills) != len(b.fills) or not a.fills.equals(b.fills)


@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_model_steps_match_python_on_random_sequences(name):
    rng = np.random.default_rng(7)
    model = MODELS[name]()
    form = model.compiled()
    for _ in range(200):
        level = float(rng.integers(0, 2000))
        calls, shown = [], level
        for _ in range(int(rng.integers(1, 30))):
            if rng.random() < 0.4:
                calls.append(("trade", float(rng.integers(1, 500))))
            else:
                new = float(max(0, shown + rng.integers(-600, 400)))
                calls.append(("depth", shown, new))
                shown = new
        st = qm.QueueState()
        model.new_order(st, level)
        aheads, reached = [st.ahead], []
        for c in calls:
            if c[0] == "trade":
                reached.append(model.trade(st, c[1]))
            else:
                model.depth(st, c[1], c[2])
            aheads.append(st.ahead)
        assert form.simulate(level, calls) == (aheads, reached)


def test_compiled_forms_only_for_unchanged_builtin_models():
    class Mine(qm.PowerProbQueueFunc):
        def prob(self, front, back, prev):
            return 0.5

    assert Mine(2).compiled() is None
    m = qm.LogProbQueueFunc()
    m.depth = lambda st, p, n: None
    assert m.compiled() is None
    assert qm.QueueModel().compiled() is None
    assert repr(qm.PowerProbQueueFunc(2).compiled()) == "PowerProbQueueFunc(n=2) (compiled)"
    with pytest.raises(ValueError, match="code must be 1-6"):
        CPowerLogQueueModel(9)
    # the prob base: p = 1 (every unexplained decrease behind the order)
    assert CompiledProbQueueModel().simulate(100, [("depth", 100, 40)])[0] == [100, 40]
    with pytest.raises(ConfigError, match="queue_model"):
        Backtest(GridMaker(**GRID), np.zeros(0, dtype=lob.EVENT_DTYPE), queue_model=object())

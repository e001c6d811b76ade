"""The simulator's compiled path: when a run can go through :class:`lob.sim._simloop.SimLoop`, and the hand-over
of state between the Python objects (agents, trackers, risk manager, scorecard recorder) and the loop.

A run takes the compiled path when the clock is ``"sim"``, every agent is an array population
(:mod:`lob.sim.populations`) or a :class:`~lob.sim.StrategyAgent` running a built-in maker's compiled form, every
agent is running, the exchange has no journal and no perf analyzer, and its risk manager (if any) is a
:class:`lob.risk.RiskManager` whose limits the loop implements (all but ``max_exposure``, ``max_loss`` and
``max_drawdown``). Anything else (a Python agent, a custom Python strategy, a realtime clock) runs the Python path,
:meth:`lob.sim.Simulator._block`, unchanged. :func:`why_not` says which rule sent a simulator there.
"""
from __future__ import annotations

import math

import lob
from lob.errors import LobStateError

#: requests that wait at most for the listeners during a compiled run (they get them in batches of this size)
FLUSH_EVENTS = 1 << 16


def _lim(lim) -> tuple | None:
    # a RiskLimits as the loop's 7 integers (-1: none); None when it holds a limit the loop does not implement
    if lim.max_exposure is not None or lim.max_loss is not None or lim.max_drawdown is not None:
        return None
    cost = cap = -1
    if lim.rate_per_s is not None:
        cost = int(1_000_000_000 / lim.rate_per_s)
        cap = cost * lim.burst
    v = [lim.max_qty, lim.max_notional, lim.collar_ticks, lim.max_position, lim.max_open_orders]
    return tuple(-1 if x is None else int(x) for x in v) + (cost, cap)


def why_not(sim) -> str | None:
    """None when ``sim.run`` can take the compiled path now, else the reason it cannot."""
    from lob.mm.scorecard import RunRecorder
    from lob.risk import RiskManager
    from lob.sim.agents import StrategyAgent
    from lob.sim.populations import MomentumPopulation, NoisePopulation, ZeroIntelligencePopulation

    if not sim.compiled:
        return "compiled=False"
    if sim.clock != "sim":
        return f"the {sim.clock} clock"
    ex = sim.exchange
    if ex.journal is not None or ex.journal_port is not None:
        return "a journaled exchange"
    if ex._perf is not None:
        return "a perf analyzer on the exchange"
    if ex.intake_error is not None:
        return "order intake is stopped"
    makers = []
    for s in sim._slots:
        a = s.agent
        if s.status != "running" or not s.started:
            return f"agent {a.name!r} is {s.status if s.status != 'running' else 'not started'}"
        if type(a) is StrategyAgent:
            if getattr(a, "_loop", None) is None:
                return f"agent {a.name!r} runs a Python strategy"
            makers.append(a)
        elif type(a) not in (ZeroIntelligencePopulation, NoisePopulation, MomentumPopulation):
            return f"agent {a.name!r} is a Python agent ({type(a).__name__})"
    trackers = {id(a.tracker) for a in makers}
    for ts in list(sim.router.trackers.values()) + list(sim.router.watchers.values()):
        if any(id(t) not in trackers for t in ts):
            return "an order tracker of the router that is not a market maker's"
    rm = ex.risk
    if rm is not None:
        if type(rm) is not RiskManager:
            return f"a pre-trade check that is not a RiskManager ({type(rm).__name__})"
        if rm._loss_limits:
            return "a max_loss or max_drawdown limit"
        if any(_lim(l) is None for l in rm._limits.values()):
            return "a max_exposure limit"
    if sim.recorder is not None and type(sim.recorder) is not RunRecorder:
        return "a recorder that is not a RunRecorder"
    return None


def run(sim, steps: int) -> None:
    """``steps`` steps of ``sim`` through the compiled loop (``why_not(sim)`` must be None)."""
    # imported here, not with lob.sim: Sphinx's autodoc stands the .pyi stubs of compiled modules in for them
    # (lob.replay._steploop among them), and a compiled module that cimports one cannot load against a stub
    from lob.sim._simloop import SimLoop
    from lob.sim.agents import StrategyAgent
    from lob.sim.populations import MomentumPopulation, NoisePopulation, ZeroIntelligencePopulation

    ex = sim.exchange
    n_sym = len(ex.symbols)
    owners = ex.owners()
    n_lut = max(owners.values(), default=0) + 1
    loop = SimLoop(ex, n_sym, n_lut, [sim.initial_ticks[i] for i in range(n_sym)],
                   sim._rng.bit_generator.random_raw(4).tolist())
    skip = [sim.router.on_apply]
    pops, makers = [], []
    for slot in sim._slots:
        a = slot.agent
        if type(a) is StrategyAgent:
            makers.append((slot, a, _add_maker(loop, a)))
            continue
        seed = a.rng.bit_generator.random_raw(4).tolist()
        ids = a.owner_ids.tolist()
        if type(a) is ZeroIntelligencePopulation:
            z = loop.add_zi(a, seed, ids, a.sym.tolist(), a.rate.tolist(), a.p.tolist(), a.cancel_rate.tolist(),
                            int(a.size[0]), int(a.size[1]), a.lot_multiple, a.max_orders)
            z.set_live(a.live)
            skip.append(a._on_apply)
        elif type(a) is NoisePopulation:
            z = loop.add_noise(a, seed, ids, a.sym.tolist(), a.rate.tolist(), a.lo.tolist(), a.hi.tolist(),
                               a.lot_multiple)
        elif type(a) is MomentumPopulation:
            z = loop.add_momentum(a, seed, ids, list(a.sym), a.threshold.tolist(), a.rate.tolist(), a.size.tolist(),
                                  a.max_position.tolist(), a.position, a.lookback_ns)
            z.set_history(a._hist, a._head)
            skip.append(a._on_apply)
        pops.append((slot, a, z))
    if sim._fund is not None:
        loop.set_fundamental([sim._fund[i] for i in range(n_sym)],
                             sim.fundamental_vol_bps / 1e4 * math.sqrt(sim.step_s))
    rm = ex.risk
    if rm is not None:
        skip.append(rm.on_apply)
        lims = {(o, s): _lim(rm.limits_for(o, s)) for o in range(n_lut) for s in range(n_sym)}
        loop.set_risk(bool(rm.measure), _lim(rm._limits[(None, None)]), lims, dict(rm._last), dict(rm._ref),
                      {k: a.position for k, a in rm.ledger.accounts.items()},
                      [(s, oid, o[0], o[1], o[2], o[3]) for (s, oid), o in rm._open.items()],
                      dict(rm._n_open), {o: list(b) for o, b in rm._bucket.items()},
                      {o: int(r) for o, r in rm._killed.items()}, rm._now)
    rec = sim.recorder
    if rec is not None:
        skip.append(rec.on_apply)
        loop.set_recorder(None if rec.owners is None else sorted(rec.owners), dict(rec._last_mid))
    listeners = [fn for fn in ex._listeners if fn not in skip]
    loop.keep_outputs = bool(listeners) or rm is not None       # the ledger books the fills

    def flush():
        ev, rep, fills = loop.take_outputs(lob.EVENT_DTYPE, lob.REPORT_DTYPE, lob.FILL_DTYPE)
        if rm is not None and len(fills):
            led = rm.ledger
            for f in fills.tolist():
                _, _, price, qty, _, _, mo, to, sym, aggr, _, _ = f
                if mo:
                    led.fill(mo, sym, -1 if aggr == 0 else 1, price, qty, True)
                if to:
                    led.fill(to, sym, 1 if aggr == 0 else -1, price, qty, False)
        if len(ev):
            for fn in listeners:
                fn(ev, rep, fills)

    try:
        loop.run(sim.now_ns, sim.step_ns, sim.step_s, steps, sim.block_steps, FLUSH_EVENTS, flush)
    finally:
        # hand the state back (also after an error: the blocks that ran stand)
        sim.now_ns = loop.now
        sim.steps += loop.steps_done
        if loop.blocks_done:
            sim.block_len = loop.last_block
        for slot, _, _ in pops:
            slot.steps += loop.steps_done
        for slot, _, _ in makers:
            slot.steps += loop.blocks_done
        flush()
        if loop.last_ts > 0:
            ex._event_clock.ts_ns = loop.last_ts
        for slot, a, z in pops:
            if type(a) is ZeroIntelligencePopulation:
                a.live = z.get_live()
            elif type(a) is MomentumPopulation:
                a.set_history(z.get_history())
        for slot, a, m in makers:
            _take_maker(a, m)
        if sim._fund is not None:
            sim.set_fundamental(loop.get_fundamental())
        if rm is not None:
            _take_risk(rm, loop)
        if rec is not None:
            fills, orders, mids, last = loop.take_recorded()
            rec._fills.extend(fills)
            rec._orders.extend(orders)
            rec._mids.extend(mids)
            rec._last_mid.update(last)


def _add_maker(loop, a):
    t, sym = a.tracker, a.sym
    m = loop.add_maker(a, a._loop, t.owner_id, sym, a.every_steps, a._n, a.intents, t.position.get(sym, 0),
                       t.cash.get(sym, 0))
    m.set_orders([(oid, o[0], o[1], o[2]) for (s, oid), o in t.orders.items() if s == sym])
    m.add_pending([(ts, price, qty, aggr) for s, ts, price, qty, aggr in t.trades if s == sym],
                  [(ts, oid, 0 if sign > 0 else 1, price, qty, maker) for s, ts, oid, sign, price, qty, maker in t.fills
                   if s == sym])
    t.trades.clear()
    t.fills.clear()
    return m


def _take_maker(a, m):
    t, sym = a.tracker, a.sym
    a.set_progress(m.n, m.intents)
    t.position[sym] = m.position
    t.cash[sym] = m.cash
    for key in [k for k in t.orders if k[0] == sym]:
        del t.orders[key]
    for oid, side, price, qty in m.get_orders():
        t.orders[(sym, oid)] = [side, price, qty]
    trades, fills = m.take_pending()
    t.trades.extend((sym, ts, price, qty, aggr) for ts, price, qty, aggr in trades)
    t.fills.extend((sym, ts, oid, 1 if side == 0 else -1, price, qty, maker)
                   for ts, oid, side, price, qty, maker in fills)
    a._form.sync(a.strategy)


def _take_risk(rm, loop):
    opens, pos, last, buckets, rej, lat = loop.get_risk()
    n, q = rm.load_state(opens, last, buckets, rej, lat, loop.now_seen)
    # the loop's own counters (what its checks read) must be what its open orders say
    n_c, q_c = loop.counters
    if {o: c for o, c in n.items() if c} != n_c or {k: tuple(v) for k, v in q.items() if v != [0, 0]} != q_c:
        raise LobStateError("the compiled simulation loop's open-order counters diverged from its open orders")

"""Strategies whose decision is a numba ``@cfunc``, run by the backtest step loop without the GIL.

A numba-jitted decision fits a strategy that reads the top of the book, its position and its open orders and
writes intents (a grid, a quoter, a simple taker); one that needs fills, trades or Python objects is better a
Cython ``CompiledStrategy`` or a Python strategy. The function has the C signature ``DECIDE_SIGNATURE``
(documented on :class:`lob.replay._steploop.CFuncStrategy` and in docs/market_making.md)::

    from numba import cfunc, carray
    from lob.replay import DECIDE_SIGNATURE, NumbaStrategy

    @cfunc(DECIDE_SIGNATURE)
    def join_touch(now, position, book, depth, opens, n_open, intents, cap, state):
        b = carray(book, (depth, 4))            # bid_price, bid_qty, ask_price, ask_qty; best first
        out = carray(intents, (cap, 8))         # action, order_id, side, price, qty, tif, post_only, tag
        if n_open > 0 or b[0, 0] == 0:
            return 0
        out[0, 0] = 0; out[0, 1] = 0; out[0, 2] = 0; out[0, 3] = b[0, 0]; out[0, 4] = 100
        out[0, 5] = 0; out[0, 6] = 0; out[0, 7] = 0
        return 1

    Backtest(NumbaStrategy(join_touch), events, latency=200_000).run()

numba is an optional dependency (``pip install lobkit[numba]``).
"""
from __future__ import annotations

from lob.errors import ConfigError
from lob.replay._steploop import (BOOK_FIELDS, DECIDE_SIGNATURE, INTENT_FIELDS, OPEN_FIELDS, CFuncStrategy)

__all__ = ["NumbaStrategy", "numba_grid", "DECIDE_SIGNATURE", "BOOK_FIELDS", "OPEN_FIELDS", "INTENT_FIELDS"]


class NumbaStrategy(CFuncStrategy):
    """A compiled strategy from a numba ``@cfunc(DECIDE_SIGNATURE)``: the step loop calls it at each step end,
    without the GIL.

    Parameters
    ----------
    decide : numba CFunc
        Compiled with ``numba.cfunc(DECIDE_SIGNATURE)``.
    depth : int
        Book levels per side handed to it (rows of ``BOOK_FIELDS``; 0 where there is no level).
    cap : int
        Intent rows it may write per call.
    state : numpy float64 array, optional
        Its own values, kept across calls (read it after the run); default one zero.
    tags : sequence of str
        Names for the intents' ``tag`` column (tag ``i`` is ``tags[i-1]``; 0: none).
    """

    def __init__(self, decide, depth: int = 5, cap: int = 64, state=None, tags=()):
        try:
            from numba.core import sigutils
            from numba.core.ccallback import CFunc
        except ImportError as e:      # pragma: no cover - the optional extra
            raise ImportError("NumbaStrategy needs numba: pip install lobkit[numba]") from e
        if not isinstance(decide, CFunc):
            raise ConfigError(f"decide must be a numba @cfunc(DECIDE_SIGNATURE), got {decide!r}")
        args, ret = sigutils.normalize_signature(DECIDE_SIGNATURE)
        if decide._sig != ret(*args):
            raise ConfigError(f"decide must have the signature {DECIDE_SIGNATURE}, got {decide._sig}")
        super().__init__(decide, decide.address, depth=depth, cap=cap, state=state, tags=tags)


def numba_grid(levels: int = 5, spacing_ticks: int = 2, recenter_ticks: int | None = None, size: float = 100,
               max_position: float = 1000, requote_ticks: int = 0, lot_size: float = 1) -> NumbaStrategy:
    """:class:`lob.mm.GridMaker` (without ``max_loss``) written as a numba ``@cfunc``: the same quotes and the
    same cancel/replace reconciliation, so a backtest gives identical orders, fills and PnL (tests check it on
    the GOOG day). Its ``state`` holds ``[has_center, center, recenters]``. ``lot_size`` must be the
    backtest's."""
    import numpy as np
    from numba import carray, cfunc

    if recenter_ticks is None:
        recenter_ticks = spacing_ticks * levels // 2
    L, S, RC, RQ = int(levels), int(spacing_ticks), int(recenter_ticks), int(requote_ticks)
    lot, maxpos = float(lot_size), float(max_position)
    n_lots = max(int(np.rint(size / lot)), 1)

    @cfunc(DECIDE_SIGNATURE)
    def decide(now, position, book, depth, opens, n_open, intents, cap, state):
        b = carray(book, (depth, 4))
        op = carray(opens, (n_open, 5))
        out = carray(intents, (cap, 8))
        st = carray(state, (3,))
        bid, ask = b[0, 0], b[0, 2]
        if bid == 0 or ask == 0:
            return 0
        # GridMaker.quotes
        mid = (bid + ask) / 2.0
        if st[0] == 0.0 or abs(mid - st[1]) > RC:
            st[1] = np.rint(mid)
            st[0] = 1.0
            st[2] += 1.0
        center = np.int64(st[1])
        pos = position * lot
        long_room = maxpos - pos
        short_room = maxpos + pos
        q_side = np.empty(2 * L, np.int64)
        q_price = np.empty(2 * L, np.int64)
        nq = 0
        for i in range(1, L + 1):
            bp = center - S * i
            ap = center + S * i
            if bp < ask and bp > 0 and long_room >= (i * n_lots) * lot - 1e-9:
                q_side[nq] = 0
                q_price[nq] = bp
                nq += 1
            if ap > bid and short_room >= (i * n_lots) * lot - 1e-9:
                q_side[nq] = 1
                q_price[nq] = ap
                nq += 1
        # MarketMaker.reconcile: keep the nearest open order (by id on ties) within requote_ticks of each quote
        order = np.argsort(op[:, 0], kind="mergesort")
        used = np.zeros(n_open, np.bool_)
        missing = np.zeros(nq, np.bool_)
        for k in range(nq):
            best = -1
            best_d = 0
            for t in range(n_open):
                j = order[t]
                if used[t] or op[j, 1] != q_side[k]:
                    continue
                d = abs(op[j, 2] - q_price[k])
                if d <= RQ and (best < 0 or d < best_d):
                    best = t
                    best_d = d
            missing[k] = best < 0
            if best >= 0:
                used[best] = True
        w = 0
        for t in range(n_open):
            if not used[t]:
                if w == cap:
                    return -1
                out[w, :] = 0
                out[w, 0] = 1
                out[w, 1] = op[order[t], 0]
                w += 1
        for k in range(nq):
            if missing[k]:
                if w == cap:
                    return -1
                out[w, 0] = 0
                out[w, 1] = 0
                out[w, 2] = q_side[k]
                out[w, 3] = q_price[k]
                out[w, 4] = n_lots
                out[w, 5] = 0
                out[w, 6] = 0
                out[w, 7] = 1 + q_side[k]           # tags: 1 "bid", 2 "ask"
                w += 1
        return w

    return NumbaStrategy(decide, depth=1, cap=4 * L + 1024, state=np.zeros(3), tags=("bid", "ask"))

"""``RiskManager``: pure, clock-free pre-trade checks and post-trade limits in the order path (DESIGN §8).

The manager holds no clock and does no I/O of its own. It learns everything from its inputs: the order being
checked, and the exchange's output stream (reports and fills) through :meth:`RiskManager.on_apply`, which
maintains open orders, positions (exact integer :class:`~lob.risk.ledger.Ledger`), marks and PnL. Time, for
the throttle, is the event time of the order (``ts_ns``) or, when the caller does not give one, the latest
event time seen in the stream (or a clock injected by the host, e.g. a simulator's event clock).

Installed on an exchange (:meth:`attach`), ``exchange.risk = manager`` makes the exchange call
``check_submit(symbol, side, qty_lots, price_ticks, owner, type)`` before every per-call submit; a non-zero
result is the ``lob.Reason`` of a rejected report. The manager is also a listener of the exchange, and its
kill switch cancels the owner's open orders through ``exchange.cancel``.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Callable

import numpy as np
import pandas as pd

from lob.enums import OrderType, Reason, Status
from lob.errors import ConfigError
from lob.risk.ledger import MICRO, Ledger
from lob.risk.limits import RiskLimits

__all__ = ["RiskManager"]

_NS = 1_000_000_000
_TERMINAL = (int(Status.FILLED), int(Status.CANCELLED), int(Status.REJECTED))
_MARKET = (int(OrderType.MARKET), int(OrderType.STOP))
_DRAIN = 65_536


class RiskManager:
    """Pre-trade checks with reason codes, post-trade limits and a kill switch, per owner and symbol.

    Parameters
    ----------
    limits : RiskLimits, optional
        Default limits of every owner in every symbol (none by default).
    fees : FeeSchedule or dict, optional
        Fees booked in the PnL that the max-loss check watches.
    conservative_factor : float
        Factor applied to every limit while conservative mode is on (:meth:`set_conservative`).
    clock : callable, optional
        Event-time source (ns) for the throttle when ``check_submit`` gets no ``ts_ns``; default: the
        latest ``ts_ns`` seen in the exchange's stream.
    measure : bool
        Time every check with ``time.perf_counter_ns`` (see :meth:`latency`).
    perf : lob.perf.PerfAnalyzer, optional
        Also record check latencies into this analyzer (stage ``risk_check``).

    Examples
    --------
    >>> import lob
    >>> from lob.risk import RiskManager, RiskLimits
    >>> ex = lob.Exchange(symbols=["X"])
    >>> rm = RiskManager(RiskLimits(max_qty=100, max_position=150)).attach(ex)
    >>> ex.submit("X", "buy", 500, price=10.0, owner="a").reason
    'risk_max_qty'
    >>> ex.submit("X", "buy", 100, price=10.0, owner="a").status
    'new'
    >>> ex.submit("X", "buy", 100, price=10.0, owner="a").reason   # 100 open + 100 new > 150
    'risk_position_limit'
    """

    def __init__(self, limits: RiskLimits | None = None, fees=None, conservative_factor: float = 0.5,
                 clock: Callable[[], int] | None = None, measure: bool = True, perf=None):
        if limits is not None and not isinstance(limits, RiskLimits):
            raise ConfigError(f"limits must be a RiskLimits, got {limits!r}")
        if not 0 < conservative_factor <= 1:
            raise ConfigError(f"conservative_factor must be in (0, 1], got {conservative_factor!r}")
        self._limits: dict[tuple, RiskLimits] = {(None, None): limits or RiskLimits()}
        self._loss_limits = self._any_loss_limit()      # False: PnL needs no watching after fills
        self._eff: dict[tuple[int, int], RiskLimits] = {}
        self.conservative = False
        self.conservative_factor = conservative_factor
        self.clock = clock
        self.measure = measure
        self.perf = perf
        self.ledger = Ledger(fees)
        self.exchange = None
        # open orders: (symbol, order_id) -> [owner, side, price_ticks, remaining_lots]
        self._open: dict[tuple[int, int], list] = {}
        self._open_qty: dict[tuple[int, int], list] = {}       # (owner, symbol) -> [buy lots, sell lots]
        self._n_open: dict[int, int] = {}                       # owner -> open orders
        self._ref: dict[int, int] = {}                          # symbol -> configured reference ticks
        self._last: dict[int, int] = {}                         # symbol -> last trade ticks
        self._bucket: dict[int, list] = {}                      # owner -> [level_ns, last_ts]
        self._killed: dict[int, Reason] = {}
        self._peak: dict[int, int] = {}                         # owner -> running PnL peak (micro)
        self._now = None                                        # latest event time seen
        self._lat: list[int] = []
        self._hist = None
        self.counts: dict[str, int] = {}
        self.kills: list[dict] = []

    # --- configuration --------------------------------------------------------------------------
    def set_limits(self, limits: RiskLimits, owner: int | None = None, symbol: int | None = None) -> None:
        """Limits for one owner, one symbol, or one owner in one symbol (most specific wins)."""
        if not isinstance(limits, RiskLimits):
            raise ConfigError(f"limits must be a RiskLimits, got {limits!r}")
        self._limits[(self._owner(owner) if owner is not None else None,
                      self._sym(symbol) if symbol is not None else None)] = limits
        self._eff.clear()
        self._loss_limits = self._any_loss_limit()

    def _any_loss_limit(self) -> bool:
        return any(l.max_loss is not None or l.max_drawdown is not None for l in self._limits.values())

    def limits_for(self, owner: int, symbol: int) -> RiskLimits:
        """The limits in force for an owner in a symbol (conservative mode applied)."""
        key = (owner, symbol)
        lim = self._eff.get(key)
        if lim is None:
            L = self._limits
            lim = L.get((owner, symbol)) or L.get((owner, None)) or L.get((None, symbol)) or L[(None, None)]
            if self.conservative:
                lim = lim.scaled(self.conservative_factor)
            self._eff[key] = lim
        return lim

    def set_conservative(self, on: bool = True, factor: float | None = None) -> None:
        """Turn conservative mode on (every limit scaled by ``factor``) or off; e.g. when a component
        such as the journal or a market-data feed is degraded."""
        if factor is not None:
            if not 0 < factor <= 1:
                raise ConfigError(f"factor must be in (0, 1], got {factor!r}")
            self.conservative_factor = factor
        self.conservative = bool(on)
        self._eff.clear()

    def set_reference(self, symbol, price_ticks: int) -> None:
        """Reference price (ticks) for the collar and for valuing market orders until the first trade."""
        if not isinstance(price_ticks, (int, np.integer)) or price_ticks <= 0:
            raise ConfigError(f"price_ticks must be a positive int, got {price_ticks!r}")
        self._ref[self._sym(symbol)] = int(price_ticks)

    def attach(self, exchange, clock: Callable[[], int] | None = None) -> "RiskManager":
        """Install on an exchange: ``exchange.risk = self`` and a listener for its output stream."""
        self.exchange = exchange
        if clock is not None:
            self.clock = clock
        exchange.risk = self
        exchange.add_listener(self.on_apply)
        return self

    def _sym(self, symbol) -> int:
        if isinstance(symbol, (int, np.integer)) and not isinstance(symbol, bool):
            return int(symbol)
        if self.exchange is not None:
            return self.exchange.symbol_index(symbol)
        raise ConfigError(f"symbol must be an int index (or a name once attached to an exchange), got {symbol!r}")

    def _owner(self, owner) -> int:
        if isinstance(owner, (int, np.integer)) and not isinstance(owner, bool):
            return int(owner)
        if self.exchange is not None:
            return self.exchange.owner_id(owner)
        raise ConfigError(f"owner must be an int id (or a name once attached to an exchange), got {owner!r}")

    # --- the check ------------------------------------------------------------------------------
    def check(self, order) -> Reason:
        """Check one new order; return ``Reason.NONE`` to pass or the ``risk_*`` reason to reject.

        ``order`` is a mapping or object with ``symbol``, ``side`` (0 buy / 1 sell), ``qty_lots``,
        ``price_ticks`` (0 for a market order), ``owner``, and optionally ``type`` and ``ts_ns``.
        """
        get = order.get if isinstance(order, dict) else lambda k, d=None: getattr(order, k, d)
        return Reason(self.check_submit(self._sym(get("symbol")), int(get("side")), int(get("qty_lots")),
                                        int(get("price_ticks") or 0), self._owner(get("owner")),
                                        int(get("type", 0) or 0), get("ts_ns")))

    def check_submit(self, symbol: int, side: int, qty_lots: int, price_ticks: int, owner: int, type_: int = 0,
                     ts_ns: int | None = None) -> int:
        """The exchange's pre-trade hook: 0 to pass, else an int ``lob.Reason`` (``RISK_*``)."""
        if not self.measure:
            return self._check(symbol, side, qty_lots, price_ticks, owner, type_, ts_ns)
        t0 = time.perf_counter_ns()
        r = self._check(symbol, side, qty_lots, price_ticks, owner, type_, ts_ns)
        self._lat.append(time.perf_counter_ns() - t0)
        if len(self._lat) >= _DRAIN:
            self._drain()
        return r

    def _check(self, sym, side, qty, price, owner, type_, ts_ns) -> int:
        r = self._decide(sym, side, qty, price, owner, type_, ts_ns)
        if r:
            name = Reason(r).name.lower()
            self.counts[name] = self.counts.get(name, 0) + 1
        return r

    def _decide(self, sym, side, qty, price, owner, type_, ts_ns) -> int:
        k = self._killed.get(owner)
        if k is not None:
            return int(k)
        lim = self.limits_for(owner, sym)
        if lim.rate_per_s is not None:
            now = ts_ns if ts_ns is not None else (self.clock() if self.clock is not None else self._now)
            # token bucket in integer ns of event time: one order costs 1e9/rate ns of "credit"
            cost = int(_NS / lim.rate_per_s)
            cap = cost * lim.burst
            b = self._bucket.get(owner)
            if b is None:
                b = self._bucket[owner] = [cap, now]
            # before any event time is known (now is None) nothing refills; the first known time starts it
            level = b[0]
            if now is not None and b[1] is not None:
                level = min(cap, level + max(0, now - b[1]))
            if now is not None and (b[1] is None or now > b[1]):
                b[1] = now
            if level < cost:
                b[0] = level
                return int(Reason.RISK_THROTTLE)
            b[0] = level - cost
        if lim.max_qty is not None and qty > lim.max_qty:
            return int(Reason.RISK_MAX_QTY)
        ref = self._last.get(sym) or self._ref.get(sym)
        market = type_ in _MARKET or price <= 0
        if lim.collar_ticks is not None and not market and ref and abs(price - ref) > lim.collar_ticks:
            return int(Reason.RISK_PRICE_COLLAR)
        if lim.max_notional is not None:
            value = ref if market else price
            if not value or value * qty > lim.max_notional:
                return int(Reason.RISK_MAX_NOTIONAL)      # a market order with no reference cannot be valued
        if lim.max_open_orders is not None and self._n_open.get(owner, 0) >= lim.max_open_orders:
            return int(Reason.RISK_OPEN_ORDERS)
        if lim.max_position is not None or lim.max_exposure is not None:
            pos = self.ledger.position(owner, sym)
            ob, os_ = self._open_qty.get((owner, sym), (0, 0))
            long_ = pos + ob + (qty if side == 0 else 0)
            short = pos - os_ - (qty if side == 1 else 0)
            if lim.max_position is not None and max(long_, -short) > lim.max_position:
                return int(Reason.RISK_POSITION_LIMIT)
            if lim.max_exposure is not None:
                exposure = max(abs(long_), abs(short)) * (ref or price)
                for (o, s), (b_, s_) in self._open_qty.items():
                    if o == owner and s != sym:
                        p = self.ledger.position(o, s)
                        exposure += max(abs(p + b_), abs(p - s_)) * self._value(o, s)
                for (o, s), a in self.ledger.accounts.items():
                    if o == owner and s != sym and (o, s) not in self._open_qty:
                        exposure += abs(a.position) * self._value(o, s)
                if exposure > lim.max_exposure:
                    return int(Reason.RISK_EXPOSURE_LIMIT)
        return 0

    def check_modify(self, symbol: int, order_id: int, qty_lots: int, price_ticks: int, owner: int,
                     ts_ns: int | None = None) -> int:
        """A modify seen as cancel + new order: the order's open quantity is taken off before the new
        total is checked (a hook for the exchange's modify path; 0 passes)."""
        o = self._open.get((symbol, order_id))
        if o is None:
            return 0
        side, open_q = o[1], o[3]
        q = self._open_qty.get((owner, symbol))
        n = self._n_open.get(owner, 0)
        if q is not None:
            q[side] -= open_q
        self._n_open[owner] = n - 1
        try:
            return self.check_submit(symbol, side, qty_lots, price_ticks or o[2], owner, 0, ts_ns)
        finally:
            if q is not None:
                q[side] += open_q
            self._n_open[owner] = n

    def _mark(self, sym) -> int:
        return self._last.get(sym) or self._ref.get(sym) or 0

    def _value(self, owner, sym) -> int:
        # a symbol without a trade or a reference is valued at the owner's highest open order price there
        m = self._mark(sym)
        if m:
            return m
        return max((o[2] for (s, _), o in self._open.items() if s == sym and o[0] == owner), default=0)

    # --- the output stream ----------------------------------------------------------------------
    def on_apply(self, events, reports, fills) -> None:
        """Listener: update open orders, positions, marks and PnL from one batch of exchange output."""
        if len(events):
            t = int(events["ts_ns"].max())
            if self._now is None or t > self._now:
                self._now = t
        nr, nf = len(reports), len(fills)
        if nf == 0:
            for r in reports.tolist():
                self.on_report(r)
            return
        rl, fl = reports.tolist(), fills.tolist()
        # reports and fills share one sequence: replay them in it, so that a report's remaining quantity
        # and a maker fill's decrement apply in the order they happened
        i = j = 0
        while i < nr or j < nf:
            if j >= nf or (i < nr and rl[i][1] < fl[j][1]):
                self.on_report(rl[i])
                i += 1
            else:
                self.on_fill(fl[j])
                j += 1
        if self._loss_limits:
            self._check_losses({f[8] for f in fl})

    def on_report(self, r) -> None:
        """One ``REPORT_DTYPE`` row (as a tuple): track the order's open quantity."""
        # ts, seq, order_id, owner, price, filled, cum_filled, remaining, notional, idx, symbol, action,
        # side, status, reason, type, reserved
        oid, owner, price, remaining, sym, side, status = r[2], r[3], r[4], r[7], r[10], r[12], r[13]
        key = (sym, oid)
        o = self._open.get(key)
        if remaining > 0 and status not in _TERMINAL:
            if o is None:
                self._open[key] = [owner, side, price, remaining]
                q = self._open_qty.setdefault((owner, sym), [0, 0])
                q[side] += remaining
                self._n_open[owner] = self._n_open.get(owner, 0) + 1
            else:
                self._open_qty[(o[0], sym)][o[1]] += remaining - o[3]
                o[2], o[3] = price, remaining
        elif o is not None:
            self._remove(key, o)

    def _remove(self, key, o) -> None:
        del self._open[key]
        self._open_qty[(o[0], key[0])][o[1]] -= o[3]
        self._n_open[o[0]] -= 1

    def on_fill(self, f) -> None:
        """One ``FILL_DTYPE`` row (as a tuple): positions, cash, marks; maker orders lose the quantity."""
        _, _, price, qty, moid, _, mo, to, sym, aggr, _, _ = f
        self._last[sym] = price
        if mo:
            self.ledger.fill(mo, sym, -1 if aggr == 0 else 1, price, qty, True)
        if to:
            self.ledger.fill(to, sym, 1 if aggr == 0 else -1, price, qty, False)
        key = (sym, moid)
        o = self._open.get(key)
        if o is not None:
            o[3] -= qty
            self._open_qty[(o[0], sym)][o[1]] -= qty
            if o[3] <= 0:
                self._open_qty[(o[0], sym)][o[1]] -= o[3]
                del self._open[key]
                self._n_open[o[0]] -= 1

    # --- PnL and the kill switch ----------------------------------------------------------------
    def pnl(self, owner) -> int:
        """An owner's PnL over all symbols in micro tick-lots (fees included, marked at the last trade)."""
        owner = self._owner(owner)
        return sum(a.pnl(self._mark(s) or a.mark) for (o, s), a in self.ledger.accounts.items() if o == owner)

    def _check_losses(self, symbols) -> None:
        owners = {o for (o, s) in self.ledger.accounts if s in symbols and o not in self._killed}
        trip = []
        for o in owners:
            lim_any = [self.limits_for(o, s) for (oo, s) in self.ledger.accounts if oo == o]
            max_loss = [l.max_loss for l in lim_any if l.max_loss is not None]
            max_dd = [l.max_drawdown for l in lim_any if l.max_drawdown is not None]
            if not max_loss and not max_dd:
                continue
            p = self.pnl(o)
            peak = self._peak.get(o, 0)
            if p > peak:
                self._peak[o] = peak = p
            if (max_loss and -p > min(max_loss) * MICRO) or (max_dd and peak - p > min(max_dd) * MICRO):
                trip.append((o, p, peak))
        for o, p, peak in sorted(trip):
            self.kill(o, Reason.RISK_MAX_LOSS, detail=dict(pnl=p / MICRO, peak=peak / MICRO))

    def kill(self, owner, reason: Reason = Reason.RISK_KILL_SWITCH, detail: dict | None = None) -> list:
        """Block an owner's new orders (with ``reason``) and cancel its open orders; return the cancel
        reports (empty when not attached to an exchange)."""
        owner = self._owner(owner)
        self._killed[owner] = Reason(reason)
        self.kills.append(dict(ts_ns=self._now, owner=owner, reason=Reason(reason).name.lower(), **(detail or {})))
        out = []
        if self.exchange is not None:
            for (sym, oid), o in list(self._open.items()):
                if o[0] == owner and (sym, oid) in self._open:
                    out.append(self.exchange.cancel(sym, oid, owner=owner, ts_ns=self._now))
        return out

    def reset(self, owner) -> None:
        """Lift the kill switch of an owner; its PnL peak restarts from its current PnL."""
        owner = self._owner(owner)
        self._killed.pop(owner, None)
        self._peak[owner] = self.pnl(owner)

    def killed(self, owner) -> Reason | None:
        """The reason an owner is blocked, or None."""
        return self._killed.get(self._owner(owner))

    # --- views ----------------------------------------------------------------------------------
    def open_orders(self, owner=None) -> pd.DataFrame:
        """Tracked open orders (symbol, order_id, owner, side, price_ticks, remaining_lots)."""
        rows = [(s, oid, *o) for (s, oid), o in self._open.items()
                if owner is None or o[0] == self._owner(owner)]
        return pd.DataFrame(rows, columns=["symbol", "order_id", "owner", "side", "price_ticks", "remaining_lots"])

    def open_qty(self, owner, symbol) -> tuple[int, int]:
        """(open buy lots, open sell lots) of an owner in a symbol."""
        q = self._open_qty.get((self._owner(owner), self._sym(symbol)), (0, 0))
        return int(q[0]), int(q[1])

    def positions(self) -> pd.DataFrame:
        """Per owner and symbol: position (lots), cash, fees, realised, unrealised and PnL (tick-lots)."""
        rows = []
        for (o, s), a in sorted(self.ledger.accounts.items()):
            m = self._mark(s) or a.mark
            rows.append(dict(owner=o, symbol=s, position=a.position, mark_ticks=m, cash=a.cash / MICRO,
                             fees=a.fees / MICRO, realised=a.realised / MICRO, unrealised=a.unrealised(m) / MICRO,
                             pnl=a.pnl(m) / MICRO))
        return pd.DataFrame(rows, columns=["owner", "symbol", "position", "mark_ticks", "cash", "fees", "realised",
                                           "unrealised", "pnl"])

    # --- latency --------------------------------------------------------------------------------
    def load_state(self, opens, last, buckets, rejections, latencies, now_seen) -> tuple[dict, dict]:
        """Take over the state a compiled loop kept for this manager (:mod:`lob.sim._simloop`): its open orders
        ``(symbol, order_id, owner, side, price, remaining)``, last trade prices, throttle buckets, rejection
        counts by reason code, check latencies (ns) and the latest event time it saw. Return the open-order
        counts per owner and open quantities per ``(owner, symbol)`` derived from the open orders."""
        self._open = {(s, oid): [o, side, price, rem] for s, oid, o, side, price, rem in opens}
        q = {k: [0, 0] for k in self._open_qty}
        n = {k: 0 for k in self._n_open}
        for s, _, o, side, _, rem in opens:
            q.setdefault((o, s), [0, 0])[side] += rem
            n[o] = n.get(o, 0) + 1
        self._open_qty, self._n_open = q, n
        self._last.update(last)
        self._bucket = buckets
        if now_seen >= 0 and (self._now is None or now_seen > self._now):
            self._now = now_seen
        for r, c in rejections.items():
            name = Reason(r).name.lower()
            self.counts[name] = self.counts.get(name, 0) + c
        if self.measure and latencies:
            if self.perf is None:
                # into the HDR histogram as (value, count): the loop's checks take a few distinct ns values
                self._drain()
                if self._hist is None:
                    from hdrh.histogram import HdrHistogram

                    self._hist = HdrHistogram(1, 60 * _NS, 3)
                for v, c in Counter(latencies).items():
                    self._hist.record_value(max(1, v), c)
            else:
                self._lat.extend(latencies)
                if len(self._lat) >= _DRAIN:
                    self._drain()
        return n, q

    def _drain(self) -> None:
        if not self._lat:
            return
        if self._hist is None:
            from hdrh.histogram import HdrHistogram

            self._hist = HdrHistogram(1, 60 * _NS, 3)
        for v in self._lat:
            self._hist.record_value(max(1, v))
            if self.perf is not None:
                self.perf.record("risk_check", v, "submit")
        self._lat = []

    def latency(self) -> dict:
        """Per-check latency in ns: count, mean, p50, p99, p99.9, max (HDR histogram)."""
        self._drain()
        h = self._hist
        if h is None or h.get_total_count() == 0:
            return dict(count=0)
        return dict(count=h.get_total_count(), mean=h.get_mean_value(), p50=h.get_value_at_percentile(50),
                    p99=h.get_value_at_percentile(99), p999=h.get_value_at_percentile(99.9), max=h.get_max_value())

    def _repr_html_(self) -> str:
        killed = ", ".join(f"{o}: {r.name.lower()}" for o, r in sorted(self._killed.items())) or "none"
        return (f"<div><b>RiskManager</b> open orders {len(self._open)}, killed: {killed}, conservative: "
                f"{self.conservative}, rejections: {self.counts}{self.positions().to_html(index=False)}</div>")

    def __repr__(self) -> str:
        return (f"RiskManager(open_orders={len(self._open)}, killed={sorted(self._killed)}, "
                f"conservative={self.conservative})")

"""Health: the market driver (steps, failures, backoff), the periodic check (staleness, engine integrity,
revoked tokens), the incident log, ``/healthz`` and ``/api/performance/system``."""
from __future__ import annotations

import collections
import time
from typing import Callable

from lob.errors import LobError
from lob.server.codec import dumps, finite

__all__ = ["IncidentLog", "Health"]

_STATUS_RANK = {"ok": 0, "disabled": 0, "degraded": 1, "down": 2}


class IncidentLog:
    """Every incident (agent failures and restarts, dropped clients, stale data, integrity errors)."""

    def __init__(self, maxlen: int = 2000):
        self._rows = collections.deque(maxlen=maxlen)
        self._next = 1

    def record(self, component: str, message: str, severity: str = "warning", **extra) -> dict:
        row = dict(id=self._next, ts=time.time(), component=component, severity=severity, message=message, **extra)
        self._next += 1
        self._rows.append(row)
        return row

    @property
    def total(self) -> int:
        return self._next - 1

    def rows(self, limit: int | None = None) -> list[dict]:
        rows = list(self._rows)
        return rows[-limit:] if limit else rows



class Health:
    """The hub's health role (a part of :class:`lob.server.hub.Hub`): driver, checks, component health."""

    def _init_health(self, symbols: list[str], stale_after_s: float) -> None:
        self.stale_after_s = stale_after_s
        self.incidents = IncidentLog()
        self.stats = collections.Counter()
        self.driver = dict(status="running", failures=0, last_error=None, resume_at=None)
        self._integrity = dict(status="ok", checked_at=None, error=None)
        self._last_pub = {s: self.clock() for s in symbols}
        self._stale: dict[str, bool] = {s: False for s in symbols}
        self._stepping = False                      # a sliced market tick is in progress

    def is_stale(self, symbol: str) -> bool:
        """Whether a symbol's market data is stale (no update for ``stale_after_s``, or the market driver is
        down), as of the last :meth:`check`; False for a symbol the hub does not serve."""
        return self._stale.get(symbol, False)

    def step_market(self, schedule: Callable[[Callable], object] | None = None) -> None:
        """One tick of the market (agents act); driver failures are isolated and retried with backoff.

        With ``schedule`` (``IOLoop.add_callback``) and a market that offers ``step_parts()``, the parts run
        as a chain of separate callbacks, so that requests are served between them (a tick never holds the
        loop for more than one agent's turn); a tick still in progress when the next is due is not doubled.
        """
        d = self.driver
        now = self.clock()
        if d["resume_at"] is not None:
            if now < d["resume_at"]:
                return
            d["resume_at"] = None
            d["status"] = "running"
            self.incidents.record("agents", "market driver resumed", "info")
        parts_fn = getattr(self.market, "step_parts", None)
        if schedule is not None and parts_fn is not None:
            if self._stepping:
                return
            self._stepping = True
            self._run_parts(iter(parts_fn()), schedule, now)
            return
        try:
            self.market.step()
        except Exception as e:      # a failing driver must not take the server down
            self._driver_failed(e, now)
        self._collect_market_incidents()

    def _run_parts(self, parts, schedule, now) -> None:
        part = next(parts, None)
        if part is None:
            self._stepping = False
            self._collect_market_incidents()
            return
        try:
            part()
        except Exception as e:      # the rest of this tick is dropped, as a failing step() would be
            self._stepping = False
            self._driver_failed(e, now)
            self._collect_market_incidents()
            return
        schedule(lambda: self._run_parts(parts, schedule, now))

    def _driver_failed(self, e: BaseException, now: float) -> None:
        d = self.driver
        d["failures"] += 1
        d["last_error"] = f"{type(e).__name__}: {e}"
        backoff = min(30.0, 0.5 * 2 ** (d["failures"] - 1))
        d["resume_at"] = now + backoff
        d["status"] = "backoff"
        self.incidents.record("agents", f"market driver failed ({d['last_error']}); retry in {backoff:.1f}s",
                              "error")

    def _collect_market_incidents(self) -> None:
        for inc in self.market.incidents():
            inc = dict(inc)
            self.incidents.record(inc.pop("component", "agents"), inc.pop("message", ""),
                                  inc.pop("severity", "warning"), **inc)

    def check(self, integrity: bool = True) -> None:
        """Periodic check: flag stale symbols (and tell their subscribers), verify the engine's integrity, close
        the streams whose API token was revoked."""
        self.drop_revoked()
        now = self.clock()
        driver_down = self.driver["status"] != "running"
        for s in self.exchange.symbols:
            age = now - self._last_pub[s]
            stale = driver_down or age > self.stale_after_s
            if stale != self._stale[s]:
                self._stale[s] = stale
                why = "market driver down" if driver_down else f"no update for {age:.1f}s"
                if stale:
                    self.incidents.record("market_data", f"{s} market data stale ({why})", "warning", symbol=s)
                else:
                    self.incidents.record("market_data", f"{s} market data fresh again", "info", symbol=s)
                status = dict(type="status", symbol=s, stale=stale, reason=why if stale else None)
                self._pending.setdefault(s, []).append((status, dumps(status)))
                self._schedule()
        if integrity:
            try:
                self.exchange.check_integrity()
                self._integrity = dict(status="ok", checked_at=time.time(), error=None)
            except LobError as e:
                if self._integrity["status"] == "ok":
                    self.incidents.record("engine", f"integrity check failed: {e}", "critical")
                self._integrity = dict(status="down", checked_at=time.time(), error=str(e))

    def health(self) -> dict:
        """Per-component health: engine, market data publisher, agents, risk, journal."""
        now = self.clock()
        ex = self.exchange
        intake = ex.intake_error
        engine = dict(status="down" if intake or self._integrity["status"] != "ok" else "ok", seq=ex.seq,
                      integrity=self._integrity, intake_error=intake)
        stale = [s for s, v in self._stale.items() if v]
        md = dict(status="degraded" if stale else "ok", stale_symbols=stale,
                  last_update_age_s={s: round(now - t, 3) for s, t in self._last_pub.items()},
                  clients=len(self.subscribers), clients_dropped=self.stats["clients_dropped"])
        rows = self.market.agents()
        bad = [r for r in rows if r.get("status") not in ("running", "done")]
        if self.driver["status"] != "running":
            a_status = "down"
        elif rows and len(bad) == len(rows):
            a_status = "down"
        else:
            a_status = "degraded" if bad else "ok"
        agents = dict(status=a_status, kind=getattr(self.market, "kind", "?"), driver=dict(self.driver),
                      agents=rows)
        risk = self.guard.health()
        if ex.risk is not self.guard:       # replaced after the server installed its guard
            risk["engine_hook"] = type(ex.risk).__name__ if ex.risk is not None else None
        j = getattr(ex, "journal", None)
        if j is None:
            journal = dict(status="disabled")
        else:
            journal = dict(status="down" if intake else "ok", path=str(getattr(j, "path", "")))
        comps = dict(engine=engine, market_data=md, agents=agents, risk=risk, journal=journal)
        worst = max((_STATUS_RANK.get(c["status"], 2) for c in comps.values()), default=0)
        return dict(status=["ok", "degraded", "down"][worst], components=comps, incidents=self.incidents.total)

    def performance(self) -> dict:
        snap = self.perf.snapshot()
        snap["latency"] = [{k: (finite(v) if isinstance(v, float) else v) for k, v in r.items()}
                           for r in snap["latency"]]
        snap["server"] = dict(clients=len(self.subscribers), **{k: int(v) for k, v in self.stats.items()})
        return snap


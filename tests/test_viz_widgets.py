"""lob.viz without a browser: the Bokeh sources and ipywidgets models hold what the book says, callbacks work."""
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lob

pytest.importorskip("bokeh", reason="lob.viz needs the viz extra")
from bokeh.document import Document  # noqa: E402
from bokeh.document.events import ColumnDataChangedEvent, ColumnsPatchedEvent, ColumnsStreamedEvent  # noqa: E402

from lob import viz  # noqa: E402
from lob.viz.depth import depth_columns  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def random_events(n, seed=7, mid=10_000, symbol=0):
    """Limit adds around a mid plus some cancels of earlier ids: a flow that both rests and trades."""
    rng = np.random.default_rng(seed)
    ev = lob.empty_events(n)
    ev["symbol"] = symbol
    ev["ts_ns"] = 34_200_000_000_000 + np.arange(n) * 1_000_000
    ev["order_id"] = np.arange(1, n + 1)
    ev["side"] = rng.integers(0, 2, n)
    off = rng.integers(-2, 8, n)
    ev["price_ticks"] = np.where(ev["side"] == 0, mid - off, mid + off)
    ev["qty_lots"] = rng.integers(1, 50, n)
    cancel = rng.random(n) < 0.2
    ev["action"][cancel] = lob.Action.CANCEL
    ev["order_id"][cancel] = rng.integers(1, n + 1, cancel.sum())
    return ev


def depth_from_orders(book, levels):
    """The depth recomputed from the resting orders (displayed qty summed per price): an independent path."""
    o = book.orders(include_stops=False)
    out = []
    for side, best_first in (("buy", True), ("sell", False)):
        s = o[o["side"] == side]
        agg = defaultdict(lambda: [0, 0])
        for p, q in zip(s["price"].round(6), s["visible_qty"]):
            agg[p][0] += q
            agg[p][1] += 1
        prices = sorted(agg, reverse=best_first)[:levels]
        cum = np.cumsum([agg[p][0] for p in prices]).tolist()
        rows = list(zip(prices, [agg[p][0] for p in prices], cum, [agg[p][1] for p in prices]))
        rows.sort()
        out.append({"price": [r[0] for r in rows], "qty": [r[1] for r in rows], "cum": [r[2] for r in rows],
                    "orders": [r[3] for r in rows]})
    return out


def same_cols(a, b):
    assert a.keys() >= {"price", "qty", "cum", "orders"}
    for k in ("price", "qty", "cum", "orders"):
        assert np.allclose(np.asarray(a[k], float), np.asarray(b[k], float)), k


# --- architecture ---------------------------------------------------------------------------------------
def test_import_lob_does_not_import_lob_viz():
    code = "import sys, lob; print(any(m.startswith('lob.viz') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_only_viz_and_server_import_bokeh_or_ipywidgets():
    # at module level; a plotting function elsewhere may import bokeh when it is called (lob.queue.scoring)
    pat = re.compile(r"^(from|import)\s+(bokeh|ipywidgets|jupyter_bokeh)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "lob").rglob("*.py")
                 if p.relative_to(ROOT).parts[1] not in ("viz", "server") and pat.search(p.read_text())]
    assert offenders == []
    # and so importing every other module loads none of them (modules whose optional extra is absent skip)
    names = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                   for p in (ROOT / "lob").rglob("*.py")
                   if p.relative_to(ROOT).parts[1] not in ("viz", "server") and p.stem != "__main__")
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except ImportError:\n"
            "        pass\n"
            "print(sorted({k.split('.')[0] for k in sys.modules} & {'bokeh', 'ipywidgets', 'jupyter_bokeh'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --- depth ----------------------------------------------------------------------------------------------
def test_depth_columns_match_the_orders_after_a_random_flow():
    ex = lob.Exchange(symbols=["X"])
    ex.apply(random_events(3000))
    book = ex.book("X")
    for levels in (1, 5, 50):
        bids, asks = depth_columns(book, levels)
        want_b, want_a = depth_from_orders(book, levels)
        same_cols(bids, want_b)
        same_cols(asks, want_a)
        assert len(bids["price"]) <= levels and bids["price"] == sorted(bids["price"])
        if bids["price"] and asks["price"]:
            assert max(bids["price"]) < min(asks["price"])


def test_depth_chart_patches_same_shape_and_replaces_new_shape():
    b = lob.Book(tick_size=0.01)
    b.submit("buy", 5, price=99.99)
    b.submit("sell", 4, price=100.01)
    chart = viz.DepthChart(b, levels=5)
    doc = Document()
    doc.add_root(chart.layout)
    seen = []
    doc.on_change(lambda e: seen.append(type(e)))
    assert chart.update() == "none" and seen == []
    b.submit("buy", 3, price=99.99)            # same level set: a patch
    assert chart.update() == "patch"
    assert ColumnsPatchedEvent in seen and chart.bids.data["cum"] == [8]
    seen.clear()
    b.submit("buy", 1, price=99.98)            # a new level: the data is replaced
    assert chart.update() == "replace"
    assert ColumnDataChangedEvent in seen or any("ModelChanged" in t.__name__ for t in seen)
    same_cols(chart.bids.data, depth_from_orders(b, 5)[0])
    assert "99.99 x 8" in chart.figure.title.text


def test_depth_app_runs_headless_and_its_callback_updates():
    ex = lob.Exchange(symbols=["X"])
    ex.apply(random_events(500))
    doc = Document()
    viz.depth_app(ex.book("X"), levels=5, period_ms=100)(doc)
    chart = doc.lob_chart
    assert doc.roots == [chart.layout]
    (cb,) = list(doc.session_callbacks)
    assert cb.period == 100
    ex.apply(random_events(300, seed=8))
    cb.callback()
    same_cols(chart.bids.data, depth_from_orders(ex.book("X"), 5)[0])
    same_cols(chart.asks.data, depth_from_orders(ex.book("X"), 5)[1])


def test_depth_chart_widget_is_a_bokeh_model_widget():
    from jupyter_bokeh import BokehModel

    chart = viz.DepthChart(lob.Book())
    w = chart.widget()
    assert isinstance(w, BokehModel) and chart.widget() is w


# --- price / trades -------------------------------------------------------------------------------------
def test_price_chart_streams_every_trade_and_the_quotes():
    ex = lob.Exchange(symbols=["X", "Y"])
    chart = viz.PriceChart(ex.book("X"), rollover=10_000)
    doc = Document()
    doc.add_root(chart.layout)
    seen = []
    doc.on_change(lambda e: seen.append(type(e)))
    expected = []
    for i in range(200):
        side = "buy" if i % 3 else "sell"
        px = 100 + (i % 7) * 0.01
        r = ex.submit("X", side, 5 + i % 4, price=round(px, 2), ts_ns=1_000_000 * (i + 1))
        expected += [(t.price, t.qty, t.seq) for t in r.trades]
        ex.submit("Y", side, 5, price=50.0, ts_ns=1_000_000 * (i + 1))    # another symbol: not drawn
        chart.sample()
    chart.flush()
    assert ColumnsStreamedEvent in seen
    got = list(zip(chart.trades.data["price"], chart.trades.data["qty"], chart.trades.data["seq"]))
    assert expected and got == expected
    assert len(chart.quotes.data["x"]) == 200
    bid, ask = ex.book("X").best_bid(), ex.book("X").best_ask()
    assert chart.quotes.data["bid"][-1] == (bid[0] if bid else pytest.approx(float("nan"), nan_ok=True))
    assert chart.quotes.data["x"][-1] == 200.0  # ms of the last event
    assert set(chart.trades.data["aggressor"]) <= {"buy", "sell"}


def test_price_chart_rollover_bounds_memory_and_bind_resets():
    ex = lob.Exchange(symbols=["X"])
    chart = viz.PriceChart(ex.book("X"), rollover=50)
    for i in range(120):
        ex.submit("X", "sell", 1, price=10.0, ts_ns=i + 1)
        ex.submit("X", "buy", 1, price=10.0, ts_ns=i + 1)
        chart.update()
    assert len(chart.quotes.data["x"]) == 50 and len(chart.trades.data["x"]) == 50
    assert chart.trades.data["seq"][-1] == ex.seq
    ex2 = lob.Exchange(symbols=["X"])
    chart.bind(ex2.book("X"))
    assert chart.trades.data["x"] == [] and chart._on_batch not in ex._listeners
    ex.submit("X", "sell", 1, price=10.0)
    ex.submit("X", "buy", 1, price=10.0)       # the old exchange no longer feeds the chart
    chart.update()
    assert chart.trades.data["x"] == []


def test_price_app_registers_a_periodic_sampler():
    ex = lob.Exchange(symbols=["X"])
    doc = Document()
    viz.price_app(ex.book("X"), period_ms=50)(doc)
    (cb,) = list(doc.session_callbacks)
    ex.submit("X", "sell", 2, price=1.0, ts_ns=5_000_000)
    cb.callback()
    assert doc.lob_chart.quotes.data["ask"] == [1.0] and doc.lob_chart.quotes.data["x"] == [5.0]


# --- ladder ---------------------------------------------------------------------------------------------
def test_ladder_shows_every_level_and_updates_only_on_change():
    ex = lob.Exchange(symbols=["X"])
    ex.apply(random_events(800))
    book = ex.book("X")
    w = viz.LadderWidget(book, levels=4)
    html = w.widget.value
    d = book.depth(4)
    for p, q, _ in d["bids"] + d["asks"]:
        assert f"{p:.2f}" in html and f"{q:,g}" in html
    assert html.index(f"{d['asks'][0][0]:.2f}") < html.index("spread") < html.index(f"{d['bids'][0][0]:.2f}")
    assert w.update() is False
    book.submit("buy", 7, price=round(d["bids"][0][0] + 0.01, 2))
    assert w.update() is True and f"{d['bids'][0][0] + 0.01:.2f}" in w.widget.value


# --- scorecard ------------------------------------------------------------------------------------------
def test_scorecard_frame_drawdown_and_aliases():
    rng = np.random.default_rng(3)
    pnl = np.cumsum(rng.normal(0, 1, 300))
    df = pd.DataFrame({"ts_ns": 34_200 * 10**9 + np.arange(300) * 10**9, "pnl": pnl,
                       "position": rng.integers(-5, 5, 300), "mid": 100 + np.cumsum(rng.normal(0, .01, 300))})
    out = viz.scorecard.scorecard_frame(df)
    peak, dd = -np.inf, []
    for x in pnl:
        peak = max(peak, x)
        dd.append(x - peak)
    assert np.allclose(out["drawdown"], dd)
    assert (out["inventory"].to_numpy() == df["position"].to_numpy()).all()
    assert pd.api.types.is_datetime64_any_dtype(out["time"]) and out["time"].iloc[0].hour == 9


def test_scorecard_figure_panels_share_the_time_axis():
    df = pd.DataFrame({"time": np.arange(10.0), "pnl": np.arange(10.0), "inventory": np.arange(10) % 3,
                       "mid": 50 + np.arange(10.0)})
    fills = pd.DataFrame({"time": [1.0, 4.0], "price": [51.0, 54.0], "side": ["buy", "sell"], "qty": [1, 1]})
    lay = viz.scorecard_figure(df, fills=fills)
    assert len(lay.children) == 3
    assert all(p.x_range is lay.children[0].x_range for p in lay.children)
    srcs = {r.data_source.name: r.data_source for p in lay.children for r in p.renderers}
    assert list(srcs["scorecard"].data["pnl"]) == list(range(10))
    only_inv = viz.scorecard_figure(pd.DataFrame({"time": [0.0, 1.0], "inventory": [0, 1]}))
    assert len(only_inv.children) == 1


def test_scorecard_rejects_frames_it_cannot_plot():
    with pytest.raises(lob.errors.ConfigError, match="pnl"):
        viz.scorecard_figure(pd.DataFrame({"time": [1, 2], "x": [1, 2]}))
    with pytest.raises(lob.errors.ConfigError, match="'clock'"):
        viz.scorecard_figure(pd.DataFrame({"pnl": [1.0]}), time="clock")
    with pytest.raises(lob.errors.ConfigError, match="DataFrame"):
        viz.scorecard_figure({"pnl": [1.0]})


# --- replay player --------------------------------------------------------------------------------------
def fresh_hash(events, upto):
    ex = lob.Exchange(symbols=["S0"])
    if upto:
        ex.apply(events[:upto])
    return ex.state_hash(), ex.book("S0").depth(10)


def test_player_forward_and_scrub_back_match_a_fresh_replay():
    ev = random_events(1000, seed=11)
    p = viz.ReplayPlayer(ev, step=64)
    assert p.n_steps == 16
    for k in (3, 9, 16, 5, 0, 12):
        assert p.step_to(k) == k
        h, d = fresh_hash(ev, min(k * 64, len(ev)))
        assert p.exchange.state_hash() == h
        assert p.book.depth(10) == d
        same_cols(p.depth.bids.data, depth_from_orders(p.book, 10)[0])
        assert p.slider.value == k == p.play.value
        assert f"step {k}/16" in p.status.value
    assert p.step_to(99) == 16 and p.events_applied == 1000


def test_player_widgets_drive_it():
    ev = random_events(400, seed=5)
    p = viz.ReplayPlayer(ev, step=50)
    p.play.value = 4                        # the Play widget ticking (linked to the slider in the kernel)
    assert p.position == 4 and p.slider.value == 4
    p.slider.value = 2                      # scrub back
    assert p.position == 2 and p.exchange.state_hash() == fresh_hash(ev, 100)[0]
    # price chart: one quote sample at the start and one per step, re-sampled after the rebuild
    assert len(p.price.quotes.data["x"]) == 3
    p.speed.value = 2
    assert (p.play.interval, p.play.step) == (100, 1)
    p.speed.value = 50                      # faster than the minimum tick: bigger steps instead
    assert p.play.interval == 50 and p.play.step * p.base_interval_ms / 50 >= 50
    w = p.widget
    assert p.ladder.widget in w.children[2].children


def test_player_validates_its_input():
    with pytest.raises(lob.errors.ConfigError, match="EVENT_DTYPE"):
        viz.ReplayPlayer(np.zeros(3))
    with pytest.raises(lob.errors.ConfigError, match="step"):
        viz.ReplayPlayer(lob.empty_events(3), step=0)
    with pytest.raises(lob.errors.ConfigError, match="views"):
        viz.ReplayPlayer(lob.empty_events(3), views=("radar",))


def test_player_over_the_lobster_sample_tracks_the_orderbook_file():
    from lob.data import lobster_sample

    p = viz.ReplayPlayer.from_lobster(max_rows=2001, step=500)
    p.step_to(p.n_steps)
    msg, ob = lobster_sample(10)
    row = pd.read_csv(ob, header=None, nrows=2001).iloc[-1].to_numpy()
    # the best bid and ask of the last orderbook row (LOBSTER prices are dollars x 10000)
    assert p.book.best_ask() == (row[0] / 10000, row[1]) and p.book.best_bid() == (row[2] / 10000, row[3])
    assert len(p.price.quotes.data["x"]) == p.n_steps + 1


# --- in a Jupyter kernel --------------------------------------------------------------------------------
def run_in_kernel(kc, code: str) -> list[dict]:
    """Execute ``code``; return the iopub messages up to the kernel going idle (bounded by a timeout)."""
    msg_id = kc.execute(code)
    msgs = []
    while True:
        m = kc.get_iopub_msg(timeout=120)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        msgs.append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return msgs


def test_widgets_load_bokehjs_into_the_page_first_once_and_without_a_cdn():
    jupyter_client = pytest.importorskip("jupyter_client.manager", reason="needs jupyter_client")
    km, kc = jupyter_client.start_new_kernel(kernel_name="python3")
    try:
        msgs = run_in_kernel(kc, "import lob\nfrom lob import viz\nex = lob.Exchange(symbols=['X'])\n"
                                 "ex.submit('X', 'buy', 5, price=10.0)\nviz.DepthChart(ex.book('X')).widget()")
        kinds = [m["msg_type"] for m in msgs]
        errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
        assert not errors, errors
        loaders = [i for i, m in enumerate(msgs) if m["msg_type"] == "display_data"
                   and m["content"]["metadata"].get(viz._common.LOADER_KEY)]
        assert len(loaders) == 1
        js = msgs[loaders[0]]["content"]["data"]["application/javascript"]
        # the whole of BokehJS, inline, from the installed package: no URL to fetch
        import bokeh
        assert len(js) > 500_000 and f"Bokeh.version === \"{bokeh.__version__}\"" in js
        assert "cdn.bokeh.org" not in js and "https://" not in js.split("inline_js")[0]
        # before the widget: the page has window.Bokeh when the BokehModel view is created
        assert loaders[0] < kinds.index("comm_open") < kinds.index("execute_result")
        # a second chart (and an explicit call) in the same kernel send nothing more
        msgs = run_in_kernel(kc, "print(viz.output_notebook())\nviz.PriceChart(ex.book('X')).widget()")
        assert not [m for m in msgs if m["msg_type"] == "display_data"]
        assert any(m["msg_type"] == "stream" and m["content"]["text"] == "False\n" for m in msgs)
        # bokeh.io.show renders into the notebook (no output_notebook() of bokeh's, which would use the CDN)
        msgs = run_in_kernel(kc, "from bokeh.io import show\nfrom bokeh.plotting import figure\n"
                                 "f = figure(); f.line([1, 2], [3, 4]); show(f)")
        shown = [m["content"]["data"] for m in msgs if m["msg_type"] == "display_data"]
        assert shown and "application/vnd.bokehjs_exec.v0+json" in shown[-1]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_output_notebook_outside_a_kernel_does_nothing():
    assert viz.output_notebook() is False


# --- order ticket ---------------------------------------------------------------------------------------
def test_order_ticket_submit_cancel_modify_and_errors():
    ex = lob.Exchange(symbols=["AAPL", "MSFT"])
    seen = []
    t = viz.OrderTicket(ex, symbol="MSFT", owner="alice", on_report=seen.append)
    t.side.value, t.qty.value, t.price.value = "sell", 100, 300.0
    t.submit_button.click()
    r = t.reports[-1]
    assert (r.status, r.symbol, r.owner) == ("new", "MSFT", "alice") and seen == [r]
    assert t.order_id.value == r.order_id and ex.book("MSFT").best_ask() == (300.0, 100)
    t.qty.value = 60                             # modify to a new total of 60 at the same price
    t.modify_button.click()
    assert t.reports[-1].status == "new" and ex.book("MSFT").best_ask() == (300.0, 60)
    t.cancel_button.click()
    assert t.reports[-1].status == "cancelled" and ex.book("MSFT").best_ask() is None
    t.qty.value = -5
    assert t.submit() is None and isinstance(t.last_error, lob.LobError)
    assert "qty" in t.output.value and len(t.reports) == 3
    t.qty.value, t.price.value = 10, 300.004     # off tick: a business outcome, not an error
    assert t.submit().reason == "invalid_price_tick" and t.last_error is None


def test_order_ticket_and_untimed_orders_take_the_exchange_clock():
    # a flow on a simulated 09:30 clock, then orders without ts_ns: they sit on the flow's clock, not today's
    ex = lob.Exchange(symbols=["X"])
    assert abs(ex.clock() - time.time_ns()) < 60 * 10**9       # nothing timed yet: the wall clock
    ev = random_events(200)
    ev["ts_ns"] = 34_200 * 10**9 + np.arange(200) * 10**6
    ex.apply(ev)
    t = viz.OrderTicket(ex, owner="me")
    chart = viz.PriceChart(ex.book("X"))
    t.side.value, t.qty.value, t.price.value = "buy", 5, ex.book("X").best_ask()[0]
    r = t.submit()
    assert r.status == "filled" and r.ts_ns == int(ev["ts_ns"][-1])
    assert ex.submit("X", "sell", 1, price=200.0).ts_ns == r.ts_ns
    chart.update()
    assert chart.trades.data["x"] == [r.ts_ns / 1e6]                   # 09:30 on the chart, not 2026
    untimed = lob.empty_events(1)                                        # a batch without times (all 0)
    untimed["qty_lots"], untimed["price_ticks"], untimed["order_id"] = 1, 9_000, 10**6
    ex.apply(untimed)
    assert ex.clock() == r.ts_ns                                         # leaves the clock where it was
    fork = ex.fork()
    ev2 = ev[:1].copy()
    ev2["ts_ns"], ev2["order_id"] = r.ts_ns + 10**9, 10**6 + 1
    fork.apply(ev2)
    assert fork.clock() == r.ts_ns + 10**9 and ex.clock() == r.ts_ns    # a fork keeps a clock of its own


def test_order_ticket_market_and_stop_orders():
    ex = lob.Exchange(symbols=["X"])
    ex.submit("X", "sell", 10, price=10.0, owner="mm")
    ex.submit("X", "sell", 10, price=10.5, owner="mm")
    t = viz.OrderTicket(ex, owner="me")
    t.type.value = "stop"
    assert t.price.disabled and not t.stop_price.disabled
    t.side.value, t.qty.value, t.stop_price.value = "buy", 5, 10.0
    assert t.submit().status == "new"          # held: no trade yet
    t.type.value = "market"
    t.qty.value = 3
    r = t.submit()
    assert r.status == "filled" and r.avg_price == 10.0
    # the market trade at 10.0 triggers the buy stop: it takes 5 more at the maker's price
    assert ex.book("X").best_ask() == (10.0, 2)


def test_depth_area_outline_follows_the_step_lines():
    from lob.viz.depth import _step_area

    rng = np.random.default_rng(9)
    for mode in ("before", "after"):
        for n in (0, 1, 2, 7):
            x = sorted(rng.choice(np.arange(100), n, replace=False).tolist())
            y = rng.integers(1, 50, n).tolist()
            out = _step_area({"price": x, "cum": y}, mode)
            assert len(out["x"]) == max(0, 2 * n - 1)
            for i in range(n - 1):
                mid = (x[i] + x[i + 1]) / 2
                # the outline's height strictly inside the interval (points are sorted by x; no vertical there)
                seg = [(a, b) for a, b in zip(zip(out["x"], out["y"]), zip(out["x"][1:], out["y"][1:]))
                       if a[0] < mid < b[0]]
                assert len(seg) == 1 and seg[0][0][1] == seg[0][1][1]
                assert seg[0][0][1] == (y[i + 1] if mode == "before" else y[i])


def test_journal_player_time_travels_to_request_boundaries(tmp_path):
    ex = lob.Exchange(symbols=["X"], journal=tmp_path / "j")
    seen = [(ex.book("X").depth(50), [])]          # the live book after each request, recorded as it happens
    rng = np.random.default_rng(12)
    for i in range(40):
        side = "buy" if rng.random() < 0.5 else "sell"
        px = round(100 + int(rng.integers(-3, 4)) * 0.01, 2)
        ex.submit("X", side, int(rng.integers(1, 10)), price=px, ts_ns=10**9 * (i + 1))
        seen.append((ex.book("X").depth(50), ex.book("X").orders()["order_id"].tolist()))
    p = viz.ReplayPlayer.from_journal(ex, step=4)
    assert p.n_steps == 10
    for k in (10, 3, 0, 7, 8):
        p.step_to(k)
        depth, ids = seen[k * 4]
        assert p.book.depth(50) == depth
        assert p.book.orders()["order_id"].tolist() == ids
        assert f"requests {k * 4}/40" in p.status.value and p.slider.value == k
        same_cols(p.depth.bids.data, depth_from_orders(p.book, 10)[0])
    with pytest.raises(lob.errors.ConfigError, match="price"):
        viz.ReplayPlayer.from_journal(ex, views=("price",))


# --- the server's dashboard -----------------------------------------------------------------------------
def sim_dashboard():
    pytest.importorskip("tornado", reason="the dashboard's hub needs the server extra")
    from lob.server.hub import Hub
    from lob.server.market import SimMarket
    from lob.sim import Simulator
    from lob.viz.dashboard import Dashboard

    sim = Simulator.default(7, clock="sim", warmup_s=3.0)     # seeded: its warm-up fills every maker
    hub = Hub(SimMarket(sim))
    return sim, hub, Dashboard(hub, symbol="AAPL")


def test_dashboard_maker_inventory_is_the_makers_own_including_the_warm_up():
    # the hub attaches after the simulator's warm-up: counting only the fills it saw, it showed an inventory
    # off by the warm-up's fills (flat at -400 while the maker was long); the market's own accounts are used
    sim, hub, dash = sim_dashboard()
    mm = {a.symbol: a.strategy for a in sim.market_makers}
    assert sum(s.n_fills for s in mm.values()) > 0, "the warm-up filled no maker: the test would prove nothing"
    for _ in range(5):
        sim.run(steps=40)
        dash.update_fast()
        assert dash.mm.data["inventory"][-1] == mm["AAPL"].position_lots * mm["AAPL"]._lot
        assert dash.mm.data["pnl"][-1] == pytest.approx(mm["AAPL"].mark_to_market())
    rows = {r["symbol"]: r for r in hub.mm_stats()}
    assert set(rows) == set(sim.exchange.symbols)
    assert all(rows[s]["position"] == mm[s].position_lots for s in rows)


def test_dashboard_labels_legend_and_table():
    _, _, dash = sim_dashboard()
    assert dash.tp_fig.yaxis[0].axis_label == "events/s"
    assert dash.mm_fig.yaxis[0].axis_label and dash.mm_fig.yaxis[1].axis_label == "PnL"
    # the legend sits under the plot, outside the frame where the PnL line is drawn
    assert not dash.mm_fig.center or all(type(m).__name__ != "Legend" for m in dash.mm_fig.center)
    assert [type(m).__name__ for m in dash.mm_fig.below].count("Legend") == 1
    assert dash.incident_table.reorderable is False          # needs jquery-ui, which BokehJS does not ship

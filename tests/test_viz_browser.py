"""lob.viz charts rendered by a real browser (headless system chromium): BokehJS draws the book's data."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import lob

pytest.importorskip("bokeh", reason="lob.viz needs the viz extra")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from browser_support import ARGS, CHROMIUM, ROOTS_JS  # noqa: E402

from lob import viz  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARTIFACTS.mkdir(exist_ok=True)

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no system chromium at {CHROMIUM}")]

# count canvas pixels of a colour (within a tolerance), over every canvas of the page
COUNT_JS = """([r, g, b]) => {
  """ + ROOTS_JS + """
  let n = 0;
  for (const host of roots()) {
    for (const c of host.querySelectorAll('canvas')) {
      if (!c.width || !c.height) continue;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 4)
        if (Math.abs(d[i] - r) < 12 && Math.abs(d[i + 1] - g) < 12 && Math.abs(d[i + 2] - b) < 12 && d[i + 3] > 200) n++;
    }
  }
  return n;
}"""
TEXT_JS = "() => { " + ROOTS_JS + " return roots().map(r => (r.body || r).textContent).join(' '); }"
# ready = BokehJS has built and drawn every view (the document is idle: what bokeh.io.export waits for)
READY_JS = ("() => window.Bokeh !== undefined && Bokeh.documents.length > 0 && Bokeh.index && "
            "Object.keys(Bokeh.index).length > 0 && Bokeh.documents.every(d => d.is_idle)")


def rgb(hex_colour):
    return [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]


def render(html: Path, png: Path):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # BokehJS reports what it cannot do (e.g. "jquery-ui is required to enable DataTable.reorderable")
            # on the console, not as page errors
            # (less the readback hint that COUNT_JS's own getImageData calls cause)
            page.on("console", lambda m: m.type in ("error", "warning") and not m.text.startswith("Canvas2D:")
                    and errors.append(f"console: {m.text}"))
            page.goto(html.resolve().as_uri())
            page.wait_for_function(READY_JS, timeout=120_000)
            counts = {name: page.evaluate(COUNT_JS, rgb(c)) for name, c in
                      (("bid", viz._common.BID), ("ask", viz._common.ASK), ("trade", viz._common.TRADE))}
            text = page.evaluate(TEXT_JS)
            page.screenshot(path=str(png), full_page=True)
        finally:
            browser.close()
    return counts, text, errors


def book_with_flow():
    rng = np.random.default_rng(2)
    ex = lob.Exchange(symbols=["X"])
    for i in range(400):
        side = "buy" if rng.random() < 0.5 else "sell"
        off = int(rng.integers(0, 6)) * 0.01
        ex.submit("X", side, int(rng.integers(1, 20)), price=round(100 - off if side == "buy" else 100.01 + off, 2),
                  ts_ns=(34_200 + i) * 10**9)
    ex.submit("X", "buy", 30, type="market", ts_ns=34_700 * 10**9)
    return ex


def test_depth_chart_draws_bids_and_asks(tmp_path):
    ex = book_with_flow()
    chart = viz.DepthChart(ex.book("X"), levels=6)
    counts, text, errors = render(viz.save_html(chart, tmp_path / "depth.html"), tmp_path / "depth.png")
    assert errors == []
    assert counts["bid"] > 100 and counts["ask"] > 100      # the step lines and markers of both sides
    assert (tmp_path / "depth.png").stat().st_size > 5000


def test_empty_book_draws_no_depth(tmp_path):
    chart = viz.DepthChart(lob.Book(), levels=6)
    counts, _, errors = render(viz.save_html(chart, tmp_path / "empty.html"), tmp_path / "empty.png")
    # with no data Bokeh warns that it has no range to start from: expected for an empty book
    errors = [e for e in errors if not e.endswith("could not set initial ranges")]
    assert errors == [] and counts["bid"] == 0 and counts["ask"] == 0


def test_player_static_layout_shows_status_ladder_and_trades(tmp_path):
    rng = np.random.default_rng(4)
    n = 3000
    ev = lob.empty_events(n)
    ev["order_id"] = np.arange(1, n + 1)
    ev["ts_ns"] = 34_200 * 10**9 + np.arange(n) * 10**7
    ev["side"] = rng.integers(0, 2, n)
    ev["price_ticks"] = np.where(ev["side"] == 0, 10_000 - rng.integers(-1, 5, n), 10_000 + rng.integers(-1, 5, n))
    ev["qty_lots"] = rng.integers(1, 30, n)
    p = viz.ReplayPlayer(ev, symbols=["SIM"], step=100)
    p.step_to(20)
    counts, text, errors = render(viz.save_html(p.static_layout(), tmp_path / "player.html"), tmp_path / "player.png")
    assert errors == []
    assert "step 20/30" in text and "spread" in text
    assert f"{p.book.best_bid()[0]:.2f}" in text
    assert counts["trade"] > 20 and counts["bid"] > 100


def test_dashboard_page_draws_with_no_console_error(tmp_path):
    pytest.importorskip("tornado", reason="the dashboard's hub needs the server extra")
    from test_viz_widgets import sim_dashboard

    sim, _, dash = sim_dashboard()
    for _ in range(6):
        sim.run(steps=50)
        dash.update_fast()
        dash.update_slow()
    counts, text, errors = render(viz.save_html(dash.layout, tmp_path / "dashboard.html"), tmp_path / "dash.png")
    assert errors == []
    assert "events/s" in text or counts["bid"] > 100          # axis labels are drawn on the canvas
    assert counts["bid"] > 100 and counts["ask"] > 100
    shutil.copy(tmp_path / "dash.png", ARTIFACTS / "dashboard.png")

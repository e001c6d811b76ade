"""lob.viz charts rendered by a real browser (headless system chromium): BokehJS draws the book's data."""
import os
from pathlib import Path

import numpy as np
import pytest

import lob

pytest.importorskip("bokeh", reason="lob.viz needs the viz extra")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from lob import viz  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no system chromium at {CHROMIUM}")]

# Bokeh 3 renders inside nested shadow roots: walk them all
ROOTS_JS = """function roots(r = document, out = []) {
  out.push(r);
  for (const e of r.querySelectorAll('*')) if (e.shadowRoot) roots(e.shadowRoot, out);
  return out;
}"""
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

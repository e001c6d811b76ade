"""Render the depth chart, the scorecard and the replay player of notebook 07 (and notebook 03's GOOG
player) to PNG.

Runs the notebook's code (its seeded flow, so the pictures match the stored outputs), writes each view
as a standalone HTML page with inline BokehJS (:func:`lob.viz.save_html`) and screenshots it with headless
chromium (the system one, ``/usr/bin/chromium``) driven by playwright::

    python docs/screenshots.py OUTDIR
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def notebook_namespace(name: str = "07_live_simulation_widgets.ipynb", upto: str = "## Replay what happened") -> dict:
    """Execute the code cells of a notebook up to the markdown cell starting with ``upto``; widget-only
    cells (the ``Play`` runner) are skipped since no browser drives them here."""
    nb = json.loads((ROOT / "notebooks" / name).read_text(encoding="utf-8"))
    ns: dict = {}
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and src.startswith(upto):
            break
        if cell["cell_type"] != "code" or "widgets.Play(" in src:
            continue
        src = "\n".join(l for l in src.splitlines() if not l.startswith(("show(", "output_notebook(")))
        exec(compile(src, name, "exec"), ns)
    return ns


def screenshot(html: Path, png: Path, width: int = 1060, height: int = 800) -> Path:
    """Open ``html`` in headless chromium and save a full-page PNG."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(html.resolve().as_uri())
        page.locator("canvas").first.wait_for(timeout=15_000)
        page.wait_for_timeout(800)            # BokehJS lays out after the first frame
        page.screenshot(path=str(png), full_page=True)
        browser.close()
    return png


def main(outdir: str) -> list[Path]:
    import numpy as np

    from lob import viz

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    ns = notebook_namespace()
    stream = np.concatenate(ns["recorded"])
    player = viz.ReplayPlayer(stream, symbols=["SIM"], step=20, levels=10)
    player.step_to(player.n_steps // 2)
    views = {"depth": viz.DepthChart(ns["ex"].book("SIM"), levels=12, height=320),
             "scorecard": viz.scorecard_figure(ns["run_df"], title="owner 'me': PnL, inventory, mid"),
             "player": player.static_layout()}
    goog = viz.ReplayPlayer.from_lobster(max_rows=30_000, step=200, levels=10)   # as in notebook 03
    goog.step_to(goog.n_steps)
    views["goog_player"] = goog.static_layout()
    pngs = []
    for name, view in views.items():
        html = viz.save_html(view, out / f"lob_{name}.html", title=f"lob {name}")
        pngs.append(screenshot(html, out / f"lob_{name}.png"))
    return pngs


if __name__ == "__main__":
    for p in main(sys.argv[1] if len(sys.argv) > 1 else "."):
        print(p)

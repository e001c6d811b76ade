"""Every notebook, opened in a real JupyterLab by headless chromium and run as a user does (Run All).

nbval executes the notebooks without a browser, so it never sees a widget view fail in the page (BokehJS
not loaded when a Bokeh widget is made, a view that throws). Here one JupyterLab, started on a free
loopback port with a token, serves a temporary copy of ``notebooks/``; each notebook is opened, run to the
end and checked: every code cell ran, no error output, no failed widget view, no page error, and a drawn
Bokeh canvas in each notebook that imports ``lob.viz`` or bokeh. Its kernel is shut down before the next one.
Screenshots go to ``test-artifacts/jupyterlab/`` (ignored by git).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (the viz extra has it)")
pytest.importorskip("jupyter_bokeh", reason="lob.viz needs the viz extra")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from browser_support import ARGS, CHROMIUM, ROOTS_JS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ARTIFACTS = ROOT / "test-artifacts" / "jupyterlab"
RUN_TIMEOUT_MS = 420_000        # one notebook's Run All (the slowest, the Dask sweep, takes about a minute)

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no system chromium at {CHROMIUM}")]


def shows_bokeh(path: Path) -> bool:
    """Whether a notebook draws Bokeh: a code cell imports lob.viz or bokeh."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    src = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return bool(re.search(r"from lob import viz|import lob\.viz|from lob\.viz|\bbokeh\b", src))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 120) -> bool:
    """Poll ``url`` until it answers 200 (False if the server exited or the time ran out)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.25)        # polling a server that is starting, not synchronising with it
    return False


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One JupyterLab for every notebook: ``(base_url, token, root_dir)``; the server is stopped afterwards."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "repo"
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "benchmarks").symlink_to(ROOT / "benchmarks")       # notebook 11 loads bench_core.py from there
    # a private config dir: no announcements prompt, notebooks drawn whole (no windowing: offscreen widget
    # views are created too), no workspace of an earlier run restored
    settings = tmp / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    cfg = tmp / "config" / "labconfig"
    cfg.mkdir(parents=True)
    (cfg / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    token = secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTER_DATA_DIR=str(tmp / "data"), JUPYTER_PLATFORM_DIRS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    log = open(tmp / "lab.log", "wb")
    proc = None
    for _ in range(3):          # the free port may be taken between the probe and the bind: try another
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={tmp / 'settings'}",
             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
             f"--LabApp.workspaces_dir={tmp / 'workspaces'}", "--ServerApp.open_browser=False"],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        if wait_http(f"{base}/api/status?token={token}", proc):
            break
        proc.terminate()
        proc.wait(30)
    else:
        log.close()
        pytest.fail(f"JupyterLab did not start:\n{(tmp / 'lab.log').read_text(errors='replace')[-4000:]}")
    try:
        yield base, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        log.close()


@pytest.fixture(scope="module")
def page(lab):
    base, token, _ = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1800})
            pg.lob_errors = []
            pg.on("pageerror", lambda e: pg.lob_errors.append(f"pageerror: {e}"))
            pg.on("console", lambda m: m.type == "error" and pg.lob_errors.append(f"console: {m.text}"))
            pg.goto(f"{base}/lab?token={token}")
            pg.wait_for_function("() => window.jupyterapp && window.jupyterapp.started !== undefined",
                                 timeout=120_000)
            pg.evaluate("() => window.jupyterapp.started")
            pg.wait_for_function("() => window.jupyterapp.serviceManager.isReady", timeout=120_000)
            pg.evaluate("() => window.jupyterapp.shell.collapseLeft()")   # the notebook gets the page's width
            yield pg
        finally:
            browser.close()


# open a notebook, start its kernel, Run All; resolves when the last cell has run and the kernel is idle
RUN_JS = """async ([path, timeoutMs]) => {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Run All of ${path} did not finish in ${timeoutMs} ms`)), timeoutMs);
  });
  try { return await Promise.race([run(path), late]); } finally { clearTimeout(timer); }
}"""
RUN_JS = RUN_JS.replace("run(path)", """(async (path) => {
  const app = window.jupyterapp;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.activateById(panel.id);
  const ok = await app.commands.execute('notebook:run-all-cells');
  const kernel = panel.sessionContext.session.kernel;
  while (kernel.status !== 'idle') await new Promise(r => setTimeout(r, 100));
  return ok;
})(path)""")

# what the notebook shows after the run: cells not run, error outputs, failed widget views, drawn canvases
STATE_JS = """(path) => {
  """ + ROOTS_JS + """
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  if (!panel || panel.context.path !== path) return {error: 'the notebook is not the current widget'};
  const cells = [];
  for (const cell of panel.content.widgets) {
    if (cell.model.type !== 'code') continue;
    const outs = cell.model.outputs.toJSON();
    cells.push({count: cell.model.executionCount,
                errors: outs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
                tracebacks: outs.filter(o => o.output_type === 'stream' && /Traceback \\(most recent call last\\)/.test(o.text))
                                .map(o => o.text.slice(-400))});
  }
  const node = panel.content.node;
  const text = node.innerText;
  const failed = [...node.querySelectorAll('.jupyter-widgets-error-widget')].map(e => e.innerText.slice(0, 300));
  for (const marker of ['Click to show javascript error', 'Failed to create view', 'Error displaying widget',
                        'BokehJS does not appear to have successfully loaded', 'BokehJS failed to load'])
    if (text.includes(marker)) failed.push(marker);
  let canvases = 0, drawn = 0;
  for (const r of roots(node)) for (const c of r.querySelectorAll('canvas')) {
    if (!c.width || !c.height) continue;
    canvases++;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4)      // a pixel neither transparent nor white: something is drawn
      if (d[i + 3] > 0 && (d[i] < 235 || d[i + 1] < 235 || d[i + 2] < 235)) { drawn++; break; }
  }
  return {cells, failed, canvases, drawn, bokeh: window.Bokeh ? window.Bokeh.version : null};
}"""

# hide the notebook, shut its kernel down, close it (without the save dialog: it is a temporary copy). Hidden
# first: Bokeh views sync their new size (0) to the kernel, and a view that does so after its comm was closed
# throws "Cannot send" (jupyter_bokeh); hidden while the kernel runs, they have nothing left to send.
CLOSE_JS = """async () => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  const id = panel.sessionContext.session.id;
  const kernel = panel.sessionContext.session.kernel;
  panel.hide();
  for (let i = 0; i < 3; i++) await new Promise(r => requestAnimationFrame(r));
  for (let i = 0; i < 300 && kernel.status !== 'idle'; i++) await new Promise(r => setTimeout(r, 100));
  await app.serviceManager.sessions.shutdown(id);
  panel.context.model.dirty = false;
  panel.dispose();
}"""


def running_kernels(base: str, token: str, timeout_s: float = 30) -> list:
    """The server's kernels, polled until there are none or the time runs out (a shutdown is asynchronous)."""
    end = time.monotonic() + timeout_s
    while True:
        with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=10) as r:
            kernels = json.loads(r.read())
        if not kernels or time.monotonic() > end:
            return kernels
        time.sleep(0.2)


def screenshots(pg, stem: str) -> list[Path]:
    """The notebook as the user sees it, then each output that holds a Bokeh view or a widget, scrolled to."""
    out = [ARTIFACTS / f"{stem}.png"]
    pg.screenshot(path=str(out[0]))
    views = pg.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output:has(.bk-Figure, "
                       ".bk-Column, .bk-Row, .bk-GridPlot, .widget-box, .widget-html)")
    for i in range(min(views.count(), 8)):
        v = views.nth(i)
        v.scroll_into_view_if_needed()
        path = ARTIFACTS / f"{stem}_view{i + 1}.png"
        v.screenshot(path=str(path))
        out.append(path)
    return out


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(lab, page, nb):
    path = f"notebooks/{nb.name}"
    page.lob_errors.clear()
    try:
        ran = page.evaluate(RUN_JS, [path, RUN_TIMEOUT_MS])
        state = page.evaluate(STATE_JS, path)
        if shows_bokeh(nb) and state.get("drawn", 0) == 0:
            # the views draw on the next animation frames after the kernel went idle
            page.wait_for_function(f"() => ({STATE_JS})({json.dumps(path)}).drawn > 0", timeout=60_000)
            state = page.evaluate(STATE_JS, path)
        shots = screenshots(page, nb.stem)
    finally:
        page.evaluate(CLOSE_JS)
        left = running_kernels(*lab[:2])
    assert "error" not in state, state
    not_run = [i for i, c in enumerate(state["cells"]) if c["count"] is None]
    assert ran and not not_run, f"Run All stopped; code cells not run: {not_run}"
    errors = [e for c in state["cells"] for e in c["errors"] + c["tracebacks"]]
    assert errors == [], errors
    assert state["failed"] == [], state["failed"]
    assert page.lob_errors == [], page.lob_errors       # while it ran, and while it was closed
    if shows_bokeh(nb):
        assert state["bokeh"] is not None, "BokehJS is not loaded in the page"
        assert state["drawn"] >= 1, f"no drawn Bokeh canvas ({state['canvases']} canvases)"
    assert all(p.stat().st_size > 2000 for p in shots)
    assert left == [], f"kernels still running after the shutdown: {left}"


# while the live cell runs: sample (kernel status, bid levels the depth chart's view holds) on every frame
WATCH_JS = """() => {
  window.lobSeen = [];
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const timer = setInterval(() => {
    try {
      const docs = (window.Bokeh ? Bokeh.documents : []).filter(d => d.get_model_by_name('bids'));
      if (docs.length) {
        const data = docs[docs.length - 1].get_model_by_name('bids').data;
        window.lobSeen.push([kernel.status, (data.get ? data.get('price') : data.price).length]);
      }
    } catch (e) { window.lobSeen.push(['error', String(e)]); }
    if (window.lobSeen.length > 20000) clearInterval(timer);
  }, 10);
}"""

LIVE_CELLS = [
    "import time\nimport lob\nfrom lob import viz\nex = lob.Exchange(symbols=['X'])\n"
    "chart = viz.DepthChart(ex.book('X'), levels=40)\nchart.widget()",
    "for i in range(1, 41):              # one more bid level every 50 ms, the chart updated each time\n"
    "    ex.submit('X', 'buy', i, price=round(100 - i * 0.01, 2))\n    chart.update()\n    time.sleep(0.05)\n"
    "len(ex.book('X').depth(100)['bids'])",
]


def test_live_updates_reach_the_page_while_the_cell_runs(lab, page):
    """A Bokeh widget moves while its cell is still running (the kernel busy), not only when it ends."""
    _, _, root = lab
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": src}
             for src in LIVE_CELLS]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                      "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    (root / "live_updates.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    page.lob_errors.clear()
    try:
        page.evaluate(RUN_JS.replace("'notebook:run-all-cells'", "'notebook:run-cell-and-select-next'"),
                      ["live_updates.ipynb", RUN_TIMEOUT_MS])        # the first cell: the chart
        page.wait_for_function(f"() => ({STATE_JS})('live_updates.ipynb').drawn > 0", timeout=60_000)
        page.evaluate(WATCH_JS)
        ran = page.evaluate(RUN_JS, ["live_updates.ipynb", RUN_TIMEOUT_MS])
        page.wait_for_function("() => window.lobSeen.some(([s, n]) => s === 'idle' && n === 40)", timeout=60_000)
        seen = page.evaluate("() => window.lobSeen")
        state = page.evaluate(STATE_JS, "live_updates.ipynb")
        page.screenshot(path=str(ARTIFACTS / "live_updates.png"))
    finally:
        page.evaluate(CLOSE_JS)
        running_kernels(*lab[:2])
    assert ran and all(c["count"] is not None for c in state["cells"]), state
    assert not [x for x in seen if x[0] == "error"], seen[-3:]
    busy = sorted({n for s, n in seen if s == "busy"})
    # intermediate states drawn while the loop ran: many bid counts between none and all 40
    assert len([n for n in busy if 0 < n < 40]) >= 5, busy
    assert page.lob_errors == [] and state["failed"] == [], (page.lob_errors, state["failed"])

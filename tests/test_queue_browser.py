"""Notebook 12's score and calibration plots rendered by a real browser (headless system chromium)."""
import os

import numpy as np
import pytest

pytest.importorskip("bokeh", reason="the plots need the viz extra")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from test_viz_browser import CHROMIUM, render  # noqa: E402

from lob.queue.l3 import goog_l3  # noqa: E402
from lob.queue.models import predict_fills, standard_models  # noqa: E402
from lob.queue.scoring import calibration_table, default_times, score, step_survival  # noqa: E402
from lob.queue.shadow import random_shadows, track_shadows  # noqa: E402
from lob.viz import save_html  # noqa: E402
from lob.viz.queue import plot_calibration, plot_scores  # noqa: E402

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no system chromium at {CHROMIUM}")]

def test_score_and_calibration_plots_render(tmp_path):
    s = goog_l3()
    res = track_shadows(s, random_shadows(s, 300, seed=8, max_ticks_from_best=2, qty_lots=[50, 100], ttl_s=60))
    times = default_times(res.survival())
    curves = step_survival(predict_fills(s, res, standard_models((2,))), res, times)
    sc = score(res, curves, times)
    counts, text, errors = render(save_html(plot_scores(sc), tmp_path / "scores.html"), tmp_path / "scores.png")
    assert errors == []
    assert counts["trade"] > 2000                       # one bar per model in each of the two panels (TRADE blue)
    assert "risk-averse" in text and "LogProbQueueFunc2" in text
    cal = calibration_table(res, {k: curves[k] for k in ["risk-averse", "LogProbQueueFunc"]})
    _, text, errors = render(save_html(plot_calibration(cal), tmp_path / "cal.html"), tmp_path / "cal.png")
    assert errors == [] and "fill by 10 s" in text and "risk-averse" in text
    assert np.isfinite(sc["ibs"]).all()

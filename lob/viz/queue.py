"""Bokeh views of the queue-model scores of :mod:`lob.queue.scoring` (bars and calibration curves)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Div
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from lob.viz._common import TRADE

__all__ = ["plot_scores", "plot_calibration"]


def plot_scores(scores: pd.DataFrame, title: str = "Queue models against the L3 truth"):
    """Bokeh bars of the C-index (higher is better) and the integrated Brier score (lower is better)."""

    s = scores.groupby("model", sort=False)[["c_index", "ibs"]].mean().reset_index()
    src = ColumnDataSource(s)
    figs = []
    for col, lab in (("c_index", "concordance index (higher is better)"), ("ibs", "integrated Brier score (lower is better)")):
        f = figure(y_range=list(s["model"])[::-1], height=30 + 22 * len(s), width=420, title=lab,
                   toolbar_location=None)
        f.hbar(y="model", right=col, height=0.7, source=src, color=TRADE)
        if col == "c_index":
            f.x_range.start = 0.4
        else:
            f.x_range.start = 0.0
        figs.append(f)
    return column(Div(text=f"<b>{title}</b>"), row(*figs))   # a heading of its own: in a figure title it was cut off


def plot_calibration(table: pd.DataFrame, models=None):
    """Bokeh calibration plots, one per horizon: observed fill rate against the predicted probability."""

    models = list(models or table["model"].unique())
    figs = []
    for h, g in table.groupby("horizon_s"):
        f = figure(width=300, height=300, title=f"fill by {h:g} s", x_range=(0, 1), y_range=(0, 1),
                   x_axis_label="predicted", y_axis_label="observed", toolbar_location=None)
        f.line([0, 1], [0, 1], color="grey", line_dash="dashed")
        for i, mname in enumerate(models):
            d = g[g["model"] == mname]
            if len(d):
                c = Category10_10[i % 10]
                f.scatter(d["mean_pred"], d["obs_rate"], size=np.sqrt(d["n"]) + 3, color=c, alpha=0.7,
                          legend_label=str(mname))
                f.line(d["mean_pred"], d["obs_rate"], color=c, alpha=0.5)
        f.legend.label_text_font_size = "7pt"
        f.legend.location = "top_left"
        figs.append(f)
    return row(*figs)

"""Plots of a strategy run: PnL (with drawdown), inventory, mid price and fills, on one shared time axis."""
from __future__ import annotations

import numpy as np
import pandas as pd
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, DatetimeTickFormatter, HoverTool
from bokeh.plotting import figure

from lob.errors import ConfigError
from lob.viz._common import ASK, BID, MID, TRADE

__all__ = ["scorecard_figure", "scorecard_frame"]

_TIME_NAMES = ("time", "ts_ns", "timestamp", "ts")
_ALIASES = {"inventory": ("inventory", "position"), "pnl": ("pnl", "total_pnl", "mtm_pnl"),
            "mid": ("mid", "mid_price")}


def _time_column(df: pd.DataFrame, time: str | None) -> pd.Series:
    if time is not None:
        if time not in df.columns:
            raise ConfigError(f"time column {time!r} is not in the frame (columns: {list(df.columns)})")
        t = df[time]
    else:
        name = next((c for c in _TIME_NAMES if c in df.columns), None)
        t = df[name] if name is not None else df.index.to_series()
    if pd.api.types.is_datetime64_any_dtype(t):
        return pd.Series(pd.to_datetime(t).to_numpy(), index=df.index)
    if pd.api.types.is_integer_dtype(t) and (t.name in ("ts_ns", "ts") or (len(t) and abs(int(t.iloc[-1])) > 10**12)):
        return pd.Series(pd.to_datetime(t.to_numpy(), unit="ns"), index=df.index)
    return pd.Series(t.to_numpy(dtype=float), index=df.index)


def scorecard_frame(df: pd.DataFrame, time: str | None = None) -> pd.DataFrame:
    """Normalise a run's frame to the columns the plots use: ``time``, ``pnl``, ``drawdown``, ``inventory``, ``mid``.

    Accepts the aliases ``position`` (inventory), ``total_pnl``/``mtm_pnl`` (pnl), ``mid_price`` (mid) and a
    time column named ``time``, ``ts_ns``, ``timestamp`` or ``ts`` (else the index). Integer nanoseconds
    become datetimes. ``drawdown`` is ``pnl - running max(pnl)`` (zero or negative).

    Examples
    --------
    >>> df = pd.DataFrame({"ts_ns": [1, 2, 3], "pnl": [0.0, 2.0, 1.5], "position": [0, 10, -5]})
    >>> scorecard_frame(df)[["pnl", "drawdown", "inventory"]].to_numpy().tolist()
    [[0.0, 0.0, 0.0], [2.0, 0.0, 10.0], [1.5, -0.5, -5.0]]
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"scorecard data must be a pandas DataFrame, got {type(df).__name__}")
    out = pd.DataFrame({"time": _time_column(df, time)})
    for name, aliases in _ALIASES.items():
        col = next((a for a in aliases if a in df.columns), None)
        if col is not None:
            out[name] = df[col].to_numpy(dtype=float)
    if "pnl" not in out and "inventory" not in out:
        raise ConfigError(f"scorecard data needs a 'pnl' or an 'inventory'/'position' column, got {list(df.columns)}")
    if "pnl" in out:
        out["drawdown"] = out["pnl"] - np.maximum.accumulate(out["pnl"].fillna(-np.inf).to_numpy())
    return out.reset_index(drop=True)


def scorecard_figure(df: pd.DataFrame, time: str | None = None, fills: pd.DataFrame | None = None,
                     width: int = 720, panel_height: int = 180, title: str = "scorecard"):
    """Stacked Bokeh panels of a run sharing the time axis: PnL with drawdown, inventory, and the mid with fills.

    Parameters
    ----------
    df : DataFrame
        One row per mark: a time column and ``pnl`` and/or ``inventory`` (``position``), optionally ``mid``
        (see :func:`scorecard_frame` for accepted names). ``lob.replay.Backtest`` results' ``pnl`` frame works
        as is.
    time : str, optional
        Name of the time column.
    fills : DataFrame, optional
        ``time``/``ts_ns``, ``price``, ``side`` ("buy"/"sell"), ``qty``: drawn on the mid panel.
    width, panel_height : int
    title : str

    Returns
    -------
    bokeh ``Column`` layout; its ``children`` are the panels, each figure's sources hold the columns drawn.
    """
    data = scorecard_frame(df, time)
    src = ColumnDataSource({c: data[c].to_numpy() for c in data.columns}, name="scorecard")
    is_dt = pd.api.types.is_datetime64_any_dtype(data["time"])
    panels = []

    def panel(ylabel, first=False):
        kw = dict(x_range=panels[0].x_range) if panels else {}
        p = figure(width=width, height=panel_height, x_axis_type="datetime" if is_dt else "linear",
                   y_axis_label=ylabel, tools="xpan,xwheel_zoom,box_zoom,reset,save",
                   # one toolbar for the stack: the panels share the x range, so its tools move them all
                   toolbar_location="right" if not panels else None, title=title if first else None, **kw)
        p.min_border_right = 40 if panels else 0
        if is_dt:
            p.xaxis.formatter = DatetimeTickFormatter(seconds="%H:%M:%S", minsec="%H:%M:%S", minutes="%H:%M",
                                                      hourmin="%H:%M", hours="%H:%M")
        p.yaxis.axis_label_text_font_size = "12px"
        panels.append(p)
        return p

    tip_t = "@time{%H:%M:%S}" if is_dt else "@time"
    fmt = {"@time": "datetime"} if is_dt else {}
    if "pnl" in data:
        p = panel("PnL", first=True)
        p.varea(x="time", y1="drawdown", y2=0, source=src, fill_color=ASK, fill_alpha=0.2, legend_label="drawdown")
        line = p.line(x="time", y="pnl", source=src, line_color=TRADE, line_width=2, legend_label="PnL")
        p.add_tools(HoverTool(renderers=[line], tooltips=[("time", tip_t), ("PnL", "@pnl{0,0.00}"),
                                                          ("drawdown", "@drawdown{0,0.00}")], formatters=fmt))
        p.legend.location = "top_left"
        p.legend.orientation = "horizontal"
        p.legend.background_fill_alpha = 0.6
    if "inventory" in data:
        p = panel("inventory", first=not panels)
        line = p.step(x="time", y="inventory", source=src, mode="after", line_color=MID, line_width=2)
        p.add_tools(HoverTool(renderers=[line], tooltips=[("time", tip_t), ("inventory", "@inventory{0,0}")],
                              formatters=fmt))
    if "mid" in data:
        p = panel("mid", first=not panels)
        p.line(x="time", y="mid", source=src, line_color=MID)
        if fills is not None and len(fills):
            f = fills.copy()
            f["time"] = _time_column(f, None)
            for side, colour, marker in (("buy", BID, "triangle"), ("sell", ASK, "inverted_triangle")):
                s = f[f["side"] == side]
                if len(s):
                    p.scatter(x="time", y="price", source=ColumnDataSource({c: s[c].to_numpy() for c in ("time", "price", "qty")}),
                              marker=marker, size=8, fill_color=colour, line_color=colour, legend_label=side)
            p.legend.location = "top_left"
            p.legend.orientation = "horizontal"
    panels[-1].xaxis.axis_label = "time"
    for p in panels[:-1]:
        p.xaxis.major_label_text_font_size = "0px"
    return column(*panels)

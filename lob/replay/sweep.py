"""Parameter sweeps of backtests on dask.distributed (an embedded LocalCluster by default)."""
from __future__ import annotations

import itertools
import os
import time
from typing import Any, Callable, Iterable

import pandas as pd

from lob.errors import ConfigError

__all__ = ["sweep", "grid"]


def grid(**params: Iterable) -> list[dict]:
    """The cartesian product of parameter lists: ``grid(a=[1, 2], b=[3]) == [{'a': 1, 'b': 3}, {'a': 2, 'b': 3}]``."""
    keys = list(params)
    for k, v in params.items():
        if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
            raise ConfigError(f"grid parameter {k!r} must be a list of values, got {v!r}")
    return [dict(zip(keys, combo)) for combo in itertools.product(*(list(params[k]) for k in keys))]


def _load(data, max_rows):
    # a LOBSTER (message, orderbook) pair or an EVENT_DTYPE array -> (events, name)
    from lob.replay.backtest import lobster_events

    if isinstance(data, (tuple, list)) and len(data) == 2:
        events, _ = lobster_events(*data, max_rows=max_rows)
        return events, os.path.basename(str(data[0]))
    return data, "events"


def _warm():
    import lob.mm  # noqa: F401
    import lob.replay.backtest  # noqa: F401


def _run_one(strategy_factory, params: dict, events, name: str, backtest_kwargs: dict) -> dict:
    # runs on a worker: the day's events arrive loaded (scattered once per worker), one summary row back
    from lob.replay.backtest import Backtest

    t = time.perf_counter()
    result = Backtest(strategy_factory(**params), events, progress=False, **backtest_kwargs).run()
    return {**params, "data": name, **result.summary, "run_s": time.perf_counter() - t}


def sweep(strategy_factory: Callable[..., Any], params: list[dict] | dict, data: list, *,
          address: str | None = None, n_workers: int = 2, progress: bool = True, **backtest_kwargs) -> pd.DataFrame:
    """Run a backtest for every (parameters, data file) pair on a Dask cluster; return one DataFrame.

    Parameters
    ----------
    strategy_factory : callable
        ``strategy_factory(**params)`` builds a fresh strategy; it must be importable by the workers
        (a class or function defined in a module, not in ``__main__``).
    params : list of dict, or dict of lists (expanded with :func:`grid`)
    data : list
        LOBSTER ``(message_file, orderbook_file)`` pairs, or EVENT_DTYPE arrays.
    address : str, optional
        A dask scheduler address (``tcp://host:8786``); by default an embedded LocalCluster of
        ``n_workers`` single-threaded processes is started and closed.
    progress : bool
        A tqdm bar over the completed tasks.
    **backtest_kwargs
        Passed to :class:`lob.replay.Backtest` (``latency``, ``impact``, ``fees``, ``step_ns``...), plus
        ``max_rows`` to read only the start of each file.

    Returns
    -------
    DataFrame
        One row per (parameters, day): the parameters, ``data``, the backtest summary and ``run_s`` (the
        backtest's own time on its worker). ``df.attrs["timing"]``: ``load_s`` (converting the days, once),
        ``wall_s`` (the runs on the cluster), ``serial_s`` (the sum of ``run_s``: the same runs one after
        another) and ``speedup_over_serial`` = serial_s / wall_s.

    Each day is converted once on the client and scattered to every worker once (``client.scatter(...,
    broadcast=True)``); the tasks receive the worker's copy.
    """
    from dask.distributed import Client, LocalCluster, as_completed

    if isinstance(params, dict):
        params = grid(**params)
    if not params:
        raise ConfigError("params is empty: nothing to sweep")
    if not data:
        raise ConfigError("data is empty: give at least one file pair or event array")
    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        # each day is converted once, here, and sent once to every worker (scatter, broadcast): a task gets
        # the worker's copy, not a file to parse again for every parameter set
        max_rows = backtest_kwargs.pop("max_rows", None)
        client.run(_warm)                   # workers import lob before the clock starts (cluster start-up)
        t0 = time.perf_counter()
        days = []
        for d in data:
            events, name = _load(d, max_rows)
            days.append((client.scatter(events, broadcast=True, hash=False), name))
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        futures = [client.submit(_run_one, strategy_factory, p, ev, name, dict(backtest_kwargs), pure=False)
                   for p in params for ev, name in days]
        rows = []
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(futures), desc="sweep", unit="run")
        for fut in as_completed(futures):
            rows.append(fut.result())
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        wall_s = time.perf_counter() - t0
        n_workers_seen = len(client.scheduler_info().get("workers", {})) or 1
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    keys = list(params[0])
    df = pd.DataFrame(rows).sort_values(keys + ["data"]).reset_index(drop=True)
    serial_s = float(df["run_s"].sum())
    df.attrs["timing"] = dict(workers=n_workers_seen, runs=len(df), load_s=load_s, wall_s=wall_s,
                              serial_s=serial_s, speedup_over_serial=serial_s / wall_s if wall_s > 0 else None)
    return df

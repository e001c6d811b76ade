"""Parameter sweeps of backtests on dask.distributed (an embedded LocalCluster by default)."""
from __future__ import annotations

import itertools
import os
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


def _run_one(strategy_factory, params: dict, data, backtest_kwargs: dict) -> dict:
    # runs on a worker: build the events, the strategy and the backtest, return one summary row
    from lob.replay.backtest import Backtest, lobster_events

    max_rows = backtest_kwargs.pop("max_rows", None)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        events, _ = lobster_events(*data, max_rows=max_rows)
        name = os.path.basename(str(data[0]))
    else:
        events, name = data, "events"
    result = Backtest(strategy_factory(**params), events, progress=False, **backtest_kwargs).run()
    return {**params, "data": name, **result.summary}


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
        futures = [client.submit(_run_one, strategy_factory, p, d, dict(backtest_kwargs), pure=False)
                   for p in params for d in data]
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
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    keys = list(params[0])
    return pd.DataFrame(rows).sort_values(keys + ["data"]).reset_index(drop=True)

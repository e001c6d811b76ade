"""lob.replay.backtest.lobster_events is the registry's LOBSTER reader (executions as aggressors): it returns
what the per-row Python parser it replaced returned (that parser is kept below, verbatim, as the oracle)."""
import gzip

import numpy as np
import pandas as pd
import pytest

import lob
from lob.data import lobster_sample
from lob.errors import ConfigError, ReplayFormatError
from lob.replay import read
from lob.replay.backtest import SEED_ID_BASE, lobster_events

OLD_SEED_ID_BASE = 1 << 60


# ------------------------------------------------------------------------------------------------ the oracle
def _seed_id(side: int, price_ticks: int) -> int:
    return OLD_SEED_ID_BASE + (side << 40) + int(price_ticks)


def old_lobster_events(message_file, orderbook_file, tick: int = 100, max_rows: int | None = None):
    """The per-row parser lobster_events was until main 213f52f (verbatim but for this docstring)."""
    from lob.replay.lobster import iter_orderbook, read_messages

    # every cell checked: a bad file raises ReplayFormatError naming the file, the row, the column, the expectation
    msg = read_messages(message_file, max_rows)
    book0 = next(iter_orderbook(orderbook_file, max_rows=1))[0]
    t = msg["time"].to_numpy()
    ts = np.round(t * 1e9).astype(np.int64)
    typ = msg["type"].to_numpy()
    oid = msg["order_id"].to_numpy()
    size = msg["size"].to_numpy()
    price = msg["price"].to_numpy()
    side = np.where(msg["direction"].to_numpy() == 1, 0, 1).astype(np.uint8)
    off = price % tick != 0
    if (off & (typ <= 4)).any():
        i = int(np.flatnonzero(off & (typ <= 4))[0])
        raise ReplayFormatError(f"{message_file} row {i}: field 'price' {price[i]} is not a multiple of tick {tick}")
    pt = price // tick

    levels = len(book0) // 4
    seeds = []
    for lvl in range(levels):
        ap, asz, bp, bsz = book0[4 * lvl:4 * lvl + 4]
        if asz > 0 and ap < 9999999999:
            seeds.append((1, ap // tick, asz))
        if bsz > 0 and bp > -9999999999:
            seeds.append((0, bp // tick, bsz))
    ev = lob.empty_events(len(seeds) + len(msg) - 1)
    for i, (s, p, q) in enumerate(seeds):
        ev[i] = (ts[0], _seed_id(s, p), 0, p, q, 0, 0, 0, lob.Action.ADD, s, 0, 0, 0, 0)
    body = ev[len(seeds):]
    sl = slice(1, None)                              # message 0 is already in orderbook row 0
    typ, oid, size, pt, side, ts = typ[sl], oid[sl], size[sl], pt[sl], side[sl], ts[sl]
    # ids the file itself submitted before each row: the others rest from before the window or outside it
    first_seen = {}
    for i in np.flatnonzero(typ == 1):
        first_seen.setdefault(int(oid[i]), int(i))
    seen = np.array([first_seen.get(int(o), len(typ)) < i for i, o in enumerate(oid)], dtype=bool)
    seed_ids = OLD_SEED_ID_BASE + (side.astype(np.int64) << 40) + pt

    body["ts_ns"] = ts
    body["side"] = side
    body["price_ticks"] = pt
    body["qty_lots"] = size
    body["order_id"] = oid
    a = body["action"]
    a[typ == 1] = lob.Action.ADD
    a[typ == 2] = lob.Action.REDUCE
    a[(typ == 3) & seen] = lob.Action.CANCEL
    unseen_delete = (typ == 3) & ~seen
    a[unseen_delete | ((typ == 2) & ~seen)] = lob.Action.REDUCE
    body["order_id"] = np.where(((typ == 2) | (typ == 3)) & ~seen, seed_ids, oid)
    ex_rows = typ == 4
    a[ex_rows] = lob.Action.ADD
    body["side"][ex_rows] = 1 - side[ex_rows]        # the aggressor is the opposite side
    body["tif"][ex_rows] = lob.TIF.IOC
    body["order_id"][ex_rows] = 0                     # engine-assigned
    halt = typ == 7
    a[halt] = np.where(price[sl][halt] == -1, lob.Action.HALT, lob.Action.RESUME)
    prints = (typ == 5) | (typ == 6)
    trades = pd.DataFrame({"ts_ns": ts[prints], "price_ticks": pt[prints], "qty_lots": size[prints]})
    keep = np.concatenate([np.ones(len(seeds), bool), ~prints])
    return np.ascontiguousarray(ev[keep]), trades


# ------------------------------------------------------------------------------------------------ the tests
def _same(new, old, halt_price_differs=False):
    (ev, trades), (ev0, trades0) = new, old
    assert ev.dtype == ev0.dtype == lob.EVENT_DTYPE and ev.flags["C_CONTIGUOUS"]
    assert len(ev) == len(ev0)
    if halt_price_differs:
        # the one deliberate difference: a HALT event's price is 0 (the old parser passed LOBSTER's -1 code
        # through as a price of -1 tick; the engine reads no price on a halt)
        halt = ev0["action"] == lob.Action.HALT
        assert halt.any() and (ev0["price_ticks"][halt] == -1).all() and (ev["price_ticks"][halt] == 0).all()
        ev0 = ev0.copy()
        ev0["price_ticks"][halt] = 0
    for name in lob.EVENT_DTYPE.names:
        assert np.array_equal(ev[name], ev0[name]), name
    pd.testing.assert_frame_equal(trades, trades0)


@pytest.mark.parametrize("level", [1, 5, 10])
def test_goog_day_gives_the_old_parsers_events(level):
    pair = lobster_sample(level)
    new = lobster_events(*pair)
    _same(new, old_lobster_events(*pair))
    assert len(new[1]) == 3913 and (new[0]["order_id"] >= SEED_ID_BASE).sum() >= 2 * level


@pytest.mark.parametrize("max_rows", [1, 2, 8_000])
def test_max_rows(max_rows):
    pair = lobster_sample(10)
    new = lobster_events(*pair, max_rows=max_rows)
    _same(new, old_lobster_events(*pair, max_rows=max_rows))
    assert len(new[0]) == 20 + max_rows - 1 - len(new[1])


# time, type, order id, size, price, direction; orderbook row 0 is the book after message 0
EDGE = """34200.000000001,1,11,50,5000100,-1
34200.1,1,12,100,4999900,1
34200.2,2,12,40,4999900,1
34200.3,3,99,60,5000200,-1
34200.4,2,98,20,4999800,1
34200.5,4,97,30,5000100,-1
34200.6,4,12,60,4999900,1
34200.7,5,0,25,5000050,1
34200.8,6,0,500,5000000,1
34200.9,7,0,0,-1,-1
34201.0,1,13,10,5000300,-1
34201.1,7,0,0,0,-1
34201.2,7,0,0,1,-1
34201.3,3,13,10,5000300,-1
34201.4,3,11,50,5000100,-1
34201.5,1,14,5,4999900,1
34201.6,4,14,5,4999900,1
34201.7,5,0,7,4999900,-1
"""
ROW0 = "5000100,300,4999900,200,5000200,400,4999800,100"


def _edge(tmp_path, gz=False, text=EDGE):
    n = len(text.splitlines())
    mp, bp = tmp_path / "E_2012-06-21_0_1_message_2.csv", tmp_path / "E_2012-06-21_0_1_orderbook_2.csv"
    book = "\n".join([ROW0] * n) + "\n"
    if gz:
        mp, bp = mp.with_name(mp.name + ".gz"), bp.with_name(bp.name + ".gz")
        with gzip.open(mp, "wt") as f:
            f.write(text)
        with gzip.open(bp, "wt") as f:
            f.write(book)
    else:
        mp.write_text(text)
        bp.write_text(book)
    return mp, bp


@pytest.mark.parametrize("gz", [False, True])
def test_edge_file_hidden_executions_cross_trades_halts_and_unseen_orders(tmp_path, gz):
    mp, bp = _edge(tmp_path, gz)
    new = lobster_events(mp, bp)
    _same(new, old_lobster_events(mp, bp), halt_price_differs=True)
    ev, trades = new
    A = lob.Action
    assert (ev["action"][:4] == A.ADD).all() and (ev["order_id"][:4] >= SEED_ID_BASE).all()
    # hidden executions and the cross trade are trades, not events (a half-tick price rounds down)
    assert trades["price_ticks"].tolist() == [50000, 50000, 49999] and trades["qty_lots"].tolist() == [25, 500, 7]
    assert len(ev) == 4 + 17 - 3
    # visible executions: IOC aggressors of the other side, engine-assigned ids
    ex_rows = ev["tif"] == lob.TIF.IOC
    assert ex_rows.sum() == 3 and (ev["order_id"][ex_rows] == 0).all() and (ev["side"][ex_rows] == [0, 1, 1]).all()
    assert [a for a in ev["action"] if a in (A.HALT, A.RESUME)] == [A.HALT, A.RESUME, A.RESUME]
    # deletions of orders the file never submitted (message 0's own order included) reduce the level's seed
    assert ev["order_id"][ev["qty_lots"] == 60].tolist() == [SEED_ID_BASE + (1 << 40) + 50002, 0]
    # the engine does the same with either array
    runs = []
    for events in (ev, old_lobster_events(mp, bp)[0]):
        ex = lob.Exchange(marketdata=False)
        ex.add_symbol("E")
        _, fills = ex.apply(events)
        runs.append((fills.tolist(), ex.book("E").depth(5)))
    assert runs[0] == runs[1] and len(runs[0][0]) > 0


@pytest.mark.parametrize("chunk_rows", [1, 3, 7, 100])
def test_any_chunk_size_gives_the_same_events(tmp_path, chunk_rows):
    mp, bp = _edge(tmp_path)
    s = read((mp, bp), executions="aggressor", chunk_rows=chunk_rows)
    chunks = list(s)
    assert all(len(c) == chunk_rows for c in chunks[:-1])
    ev, trades = lobster_events(mp, bp)
    assert np.array_equal(np.concatenate(chunks), ev)
    pd.testing.assert_frame_equal(s.trades, trades)


def test_errors_are_the_registrys(tmp_path):
    mp, bp = _edge(tmp_path, text=EDGE.replace("34200.4,2,98,20,4999800,1", "34200.4,2,98,20,4999850,1"))
    with pytest.raises(ReplayFormatError, match=rf"^{mp}: message row 4: field 'price' 4999850 is not a multiple "
                                                r"of tick 100$"):
        lobster_events(mp, bp)
    with pytest.raises(ReplayFormatError, match=rf"^{tmp_path / 'nope.csv'}: no such file"):
        lobster_events(tmp_path / "nope.csv", bp)
    mp, bp = _edge(tmp_path, text=EDGE.replace("34200.5,4,97,30,5000100,-1", "34200.5,4,97,30,500.01,-1"))
    with pytest.raises(ReplayFormatError, match=rf"^{mp}: row 5 \(line 6\), column 5 \('price'\)"):
        lobster_events(mp, bp)
    for kw, what in (({"executions": "aggressors"}, "executions"), ({"max_rows": 0}, "max_rows"),
                     ({"exact": True, "executions": "aggressor"}, "exact")):
        with pytest.raises(ConfigError, match=what):
            read((mp, bp), **kw)
    with pytest.raises(ConfigError, match="max_rows"):
        lobster_events(mp, bp, max_rows=-5)


@pytest.mark.parametrize("executions", ["reduce", "aggressor"])
@pytest.mark.parametrize("level", [1, 10])
def test_both_forms_seed_exactly_orderbook_row_0(level, executions):
    # row 0 is the book after message 0 (an execution in the GOOG file), which is not replayed: the seeds are
    # row 0 as it stands (the registry's fast form used to undo message 0 and then drop it as well)
    pair = lobster_sample(level)
    ev = next(iter(read(pair, executions=executions, chunk_rows=1000)))
    seeds = ev[: 2 * level]
    assert (seeds["order_id"] >= SEED_ID_BASE).all() and (seeds["action"] == lob.Action.ADD).all()
    ex = lob.Exchange(marketdata=False)
    ex.add_symbol("GOOG")
    ex.apply(np.ascontiguousarray(seeds))
    row0 = pd.read_csv(pair[1], header=None, nrows=1).to_numpy()[0].reshape(-1, 4)
    depth = ex.book("GOOG").depth_ticks(level)
    assert [(p * 100, q) for p, q, *_ in depth["asks"]] == [tuple(r) for r in row0[:, :2]]
    assert [(p * 100, q) for p, q, *_ in depth["bids"]] == [tuple(r) for r in row0[:, 2:]]

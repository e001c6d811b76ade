"""LOBSTER readers, events, reconstruction in the engine and verify()."""
import gzip

import numpy as np
import pandas as pd
import pytest

import lob
from lob.data import lobster_sample
from lob.errors import ReplayFormatError
from lob.replay import lobster
from lob.replay.lobster import iter_messages, iter_orderbook, message_events, quality, verify

# per-type counts published in lob/data/lobster/README.md (checked there independently of this code)
README_TYPES = {1: {1: 24368, 2: 7, 3: 13429, 4: 7765, 5: 3913},
                5: {1: 54907, 2: 16, 3: 46072, 4: 7765, 5: 3913},
                10: {1: 71258, 2: 19, 3: 64961, 4: 7765, 5: 3913}}


def _head(level, n, tmp_path):
    m, b = lobster_sample(level)
    mp, bp = tmp_path / f"m{level}.csv", tmp_path / f"b{level}.csv"
    with gzip.open(m, "rt") as f, open(mp, "w") as g:
        g.writelines(line for _, line in zip(range(n), f))
    with gzip.open(b, "rt") as f, open(bp, "w") as g:
        g.writelines(line for _, line in zip(range(n), f))
    return mp, bp


def test_streaming_readers_chunk_and_parse_exact_times():
    m, b = lobster_sample(5)
    chunks = list(iter_messages(m, chunk_rows=40_000))
    assert [len(c) for c in chunks] == [40_000, 40_000, 32_673]
    first = chunks[0].iloc[0]
    assert first["ts_ns"] == 34200_015105074 and first["type"] == 4 and first["order_id"] == 15818974
    assert chunks[1].index[0] == 40_000
    books = list(iter_orderbook(b, chunk_rows=40_000))
    assert [x.shape for x in books] == [(40_000, 20), (40_000, 20), (32_673, 20)]
    assert books[0][0, :4].tolist() == [5802300, 100, 5794000, 496]


@pytest.mark.parametrize("level", [1, 5, 10])
def test_quality_report_matches_the_published_facts(level):
    q = quality(*lobster_sample(level))
    assert q.type_counts == README_TYPES[level]
    assert q.hidden_executions == 3913 and q.half_tick_hidden == 50
    assert q.halts == [] and q.crossed_rows == 0 and q.time_decreases == 0
    if level == 10:
        assert q.unseen_order_events == {2: 1, 3: 2830, 4: 532} and q.same_time_rows == 8537
    if level == 1:
        assert q.unseen_order_events.get(3) == 2166 and q.unseen_order_events.get(4) == 2309
    assert "hidden executions (type 5)" in set(q.to_frame()["check"])


def test_message_events_mapping():
    m, _ = lobster_sample(1)
    msgs = next(iter_messages(m, chunk_rows=2000))
    ev, rows, trades = message_events(msgs)
    assert ev.dtype == lob.EVENT_DTYPE
    typ = msgs["type"].to_numpy()
    assert len(ev) == int(np.isin(typ, (1, 2, 3, 4)).sum())
    t = typ[rows]
    assert (ev["action"][t == 1] == lob.Action.ADD).all() and (ev["action"][t == 3] == lob.Action.CANCEL).all()
    assert (ev["action"][(t == 2) | (t == 4)] == lob.Action.REDUCE).all()
    assert (ev["price_ticks"] * 100 == msgs["price"].to_numpy()[rows]).all()
    assert (ev["side"] == np.where(msgs["direction"].to_numpy()[rows] == 1, 0, 1)).all()
    assert len(trades) == int(np.isin(typ, (4, 5, 6)).sum())
    bad = msgs.copy()
    bad.iloc[3, bad.columns.get_loc("type")] = 9
    with pytest.raises(ReplayFormatError, match="field 'type'"):
        message_events(bad)


@pytest.mark.parametrize("level", [1, 5, 10])
def test_verify_full_day(level):
    # DESIGN §6: every row of every shipped GOOG file is reproduced
    r = verify(*lobster_sample(level))
    assert r.rows == sum(README_TYPES[level].values())
    assert r.mismatching_rows == 0, r.first_mismatch
    assert r.refills > 0 and r.seed_levels == 2 * level
    r.exchange.book("LOBSTER").check_integrity()
    assert "LOBSTER verify" in r._repr_html_()


@pytest.mark.parametrize("level", [1, 5, 10])
def test_verify_prefix_reproduces_every_row(level, tmp_path):
    r = verify(*_head(level, 20_000, tmp_path), chunk_rows=7_000)
    assert r.rows == 20_000
    assert r.mismatching_rows == 0, r.first_mismatch


def test_verify_reports_an_altered_row(tmp_path):
    mp, bp = _head(10, 5_000, tmp_path)
    assert verify(mp, bp).mismatching_rows == 0
    lines = open(bp).read().splitlines()
    cols = lines[2500].split(",")
    cols[7] = str(int(cols[7]) + 1)           # bid size of level 2 at row 2500, one share more
    lines[2500] = ",".join(cols)
    open(bp, "w").write("\n".join(lines) + "\n")
    r = verify(mp, bp)
    assert r.mismatching_rows == 1 and r.mismatch_rows == [2500]
    fm = r.first_mismatch
    assert fm["row"] == 2500 and fm["side"] == "bid"
    assert fm["expected"][1][1] == fm["reconstructed"][1][1] + 1
    df = r.to_frame()
    assert list(df["row"]) == [2500]
    assert "2500" in r._repr_html_()


def test_itch_to_lobster_output_verifies(tmp_path):
    from test_replay_itch import generate_day
    from lob.replay import itch

    msgs, _ = generate_day(5, n_ops=600)
    itch.write_itch(msgs, tmp_path / "d.itch")
    mp, bp = itch.itch_to_lobster(tmp_path / "d.itch", "AAA", tmp_path / "out", levels=5)
    r = verify(mp, bp)
    assert r.rows > 100 and r.mismatching_rows == 0
    q = r.quality
    assert q.type_counts.get(5, 0) > 0          # P messages written as hidden executions


def test_shipped_files_are_the_shared_ones():
    # cross-check only: the repo's copies are byte-identical to ../shared/data/lobster (absent on a user's clone)
    from pathlib import Path

    shared = Path(lob.__file__).resolve().parents[2] / "shared" / "data" / "lobster"
    if not shared.is_dir():
        pytest.skip(f"cross-check needs {shared} (not part of the repository)")
    for level in (1, 5, 10):
        for p in lobster_sample(level):
            assert Path(p).read_bytes() == (shared / Path(p).name).read_bytes(), p


# --- bad files: ReplayFormatError naming the file, the row, the column and what was expected -------------
def _pair(tmp_path, n=40, name="AAA_2012-06-21_34200000_57600000_{}_1.csv"):
    m, b = _head(1, n, tmp_path)
    mp, bp = tmp_path / name.format("message"), tmp_path / name.format("orderbook")
    m.rename(mp)
    b.rename(bp)
    return mp, bp


def _edit(path, row, col, fn):
    lines = path.read_text().splitlines()
    cells = lines[row].split(",")
    cells[col] = fn(cells[col])
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def test_message_prices_in_dollars_name_file_row_column_and_the_units(tmp_path):
    from lob.replay.backtest import lobster_events

    mp, bp = _pair(tmp_path)
    assert verify(mp, bp).mismatching_rows == 0
    _edit(mp, 7, 4, lambda v: f"{int(v) / 10000:.2f}")          # 5794000 -> 579.40, only from row 7 on
    for call in (lambda: verify(mp, bp), lambda: lobster.read_messages(mp), lambda: quality(mp, bp),
                 lambda: lobster_events(mp, bp)):
        with pytest.raises(ReplayFormatError) as e:
            call()
        msg = str(e.value)
        assert msg.startswith(f"{mp}: row 7 (line 8), column 5 ('price'): expected an integer price in dollars x "
                              f"10,000"), msg
        assert "got 579.4" in msg and "multiply them by 10,000 (579.4 -> 5794000)" in msg
        assert "cannot safely convert" not in msg


def test_orderbook_prices_in_dollars_name_the_orderbook_file(tmp_path):
    mp, bp = _pair(tmp_path)
    _edit(bp, 3, 2, lambda v: f"{int(v) / 10000:.2f}")
    with pytest.raises(ReplayFormatError, match=rf"^{bp}: row 3 \(line 4\), column 3 \('bid price 1'\): expected an "
                                                r"integer price in dollars x 10,000 .*got 579\.4"):
        verify(mp, bp)


def test_text_in_a_number_column_and_a_bad_direction(tmp_path):
    mp, bp = _pair(tmp_path)
    _edit(mp, 5, 3, lambda v: "lots")
    with pytest.raises(ReplayFormatError, match=rf"^{mp}: row 5 \(line 6\), column 4 \('size'\): expected an "
                                                r"integer number of shares, got 'lots'$"):
        lobster.read_messages(mp)
    mp, bp = _pair(tmp_path)
    _edit(mp, 2, 5, lambda v: "0")
    with pytest.raises(ReplayFormatError, match=r"row 2 \(line 3\), column 6 \('direction'\): expected 1 \(buy\) or "
                                                r"-1 \(sell\), got 0"):
        verify(mp, bp)


@pytest.mark.parametrize("gz", [False, True])
def test_empty_message_file(tmp_path, gz):
    from lob.replay.backtest import lobster_events

    mp, bp = _pair(tmp_path)
    if gz:
        mp = mp.with_name(mp.name + ".gz")
        gzip.open(mp, "wb").close()
    else:
        mp.write_text("")
    for call in (lambda: verify(mp, bp), lambda: lobster.read_messages(mp), lambda: list(iter_messages(mp)),
                 lambda: quality(mp, bp), lambda: lobster_events(mp, bp)):
        with pytest.raises(ReplayFormatError, match=rf"^{mp}: the message file is empty \(no rows\); expected "
                                                    r"LOBSTER message rows: time,type,order_id,size,price,direction"):
            call()
    bp.write_text("\n")
    with pytest.raises(ReplayFormatError, match=rf"^{bp}: the orderbook file is empty"):
        list(iter_orderbook(bp))


def test_unknown_event_type_is_a_format_error_not_mismatches(tmp_path):
    from lob.replay.backtest import lobster_events

    mp, bp = _pair(tmp_path)
    _edit(mp, 10, 1, lambda v: "9")
    for call in (lambda: verify(mp, bp), lambda: quality(mp, bp), lambda: lobster_events(mp, bp)):
        with pytest.raises(ReplayFormatError, match=rf"^{mp}: row 10 \(line 11\), column 2 \('type'\): expected an "
                                                    r"event type 1\.\.7 \(1 submission, .*\), got 9$"):
            call()


def test_lob_serve_replay_names_the_file_that_is_wrong(tmp_path, capsys):
    from lob.server.cli import serve_main

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert serve_main(["--replay", str(empty), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"{empty}: the file is empty (no rows)" in err and "orderbook" not in err
    named = tmp_path / "trades.csv"
    named.write_text("34200.1,1,1,100,5000000,1\n")
    assert serve_main(["--replay", str(named), "--port", "0"]) == 2
    assert f"{named}: looks like a LOBSTER message file but is not named" in capsys.readouterr().err
    mp, bp = _pair(tmp_path)
    bp.unlink()
    assert serve_main(["--replay", str(mp), "--port", "0"]) == 2
    assert f"{bp}: no such file" in capsys.readouterr().err

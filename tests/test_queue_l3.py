"""The resolved L3 stream: the shipped GOOG stream is the verified rebuild, and it is self-consistent."""
import gzip

import numpy as np
import pytest

from lob.data import lobster_sample
from lob.errors import ReplayFormatError
from lob.queue.l3 import ADD, EXEC, L3_DTYPE, RECON, SEED, goog_l3, l3_stream, load_l3, save_l3
from lob.queue.shadow import track_shadows


def _head(level, n, tmp_path):
    out = []
    for src in lobster_sample(level):
        dst = tmp_path / src.name.replace(".gz", "")
        with gzip.open(src, "rt") as f, open(dst, "w") as g:
            g.writelines(line for _, line in zip(range(n), f))
        out.append(dst)
    return out


def test_prefix_rebuild_equals_the_shipped_stream(tmp_path):
    m, b = _head(10, 20_000, tmp_path)
    s, rep = l3_stream(m, b)
    assert rep.ok and rep.rows == 20_000
    shipped = goog_l3()
    assert np.array_equal(s, shipped[:len(s)])


@pytest.mark.slow
def test_full_rebuild_equals_the_shipped_stream():
    s, rep = l3_stream(*lobster_sample(10))
    assert rep.ok
    assert np.array_equal(s, goog_l3())


def test_stream_is_consistent():
    s = goog_l3()
    assert s.dtype == L3_DTYPE and len(s) == 153_236
    assert (np.diff(s["ts_ns"]) >= 0).all()
    assert (s["qty_lots"] > 0).all()
    # the seed book comes first, then messages; executions never come from the reconstruction's adjustments
    seed = np.flatnonzero(s["flags"] == SEED)
    assert seed.tolist() == list(range(len(seed))) and len(seed) == 20
    assert not ((s["kind"] == EXEC) & (s["flags"] & RECON > 0)).any()
    assert (s["kind"] == EXEC).sum() >= 7765            # every visible execution message (some split in two)
    # every order is added before it loses quantity and never loses more than it has
    n = int(s["order"].max()) + 1
    left = np.zeros(n, np.int64)
    added = np.zeros(n, bool)
    for o, k, q in zip(s["order"].tolist(), s["kind"].tolist(), s["qty_lots"].tolist()):
        if k == ADD:
            added[o] = True
            left[o] += q
        else:
            assert added[o]
            left[o] -= q
            assert left[o] >= 0
    # the compiled pass agrees: no level ever goes negative
    assert track_shadows(s, {"ts_ns": [], "side": []}).anomalies == 0


def test_save_and_load_round_trip(tmp_path):
    s = goog_l3()[:500].copy()
    save_l3(tmp_path / "x.npz", s, source="test")
    assert np.array_equal(load_l3(tmp_path / "x.npz"), s)
    np.savez(tmp_path / "bad.npz", ts_ns=np.zeros(3))
    with pytest.raises(ReplayFormatError, match="not an L3 stream"):
        load_l3(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="L3_DTYPE"):
        save_l3(tmp_path / "y.npz", np.zeros(3))

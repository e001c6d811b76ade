"""Replay registry throughput on the shipped GOOG LOBSTER day (level 10), against baselines in the same process.

* ``lobster``: ``lob.replay.read(pair)`` streaming fixed-size ``EVENT_DTYPE`` chunks (seeding, the
  unknown-order mapping and the re-chunking included) against the bare parser it builds on
  (``iter_messages`` + ``message_events`` over the same chunks): ``ratio`` = parser time / registry time
  (1.0 = the registry costs nothing on top of parsing).
* ``dbn``: the same day written once as DBN MBO (zstd, with the databento-dbn encoder), then
  ``lob.replay.read(path)`` to ``EVENT_DTYPE`` chunks against the databento-dbn package's own decoder turning
  the same file into Python record objects (no event mapping): ``ratio`` = decoder time / registry time.

Prints one JSON object. Timings on a loaded machine move; the ratios are taken in one process.

    python benchmarks/bench_replay.py [level]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _best(fn, runs=3):
    best, out = float("inf"), None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(level: int = 10) -> dict:
    import databento_dbn as dbn

    from lob.data import lobster_sample
    from lob.replay import read
    from lob.replay.dbn import write_dbn_mbo
    from lob.replay.lobster import iter_messages, message_events

    pair = lobster_sample(level)

    def parser():
        return sum(len(message_events(m)[0]) for m in iter_messages(pair[0], 65_536))

    def registry():
        return sum(len(c) for c in read(pair, chunk_rows=65_536))

    t_parse, n_parse = _best(parser)
    t_reg, n_reg = _best(registry)
    res = {"bench": "replay_registry", "level": level,
           "lobster": {"events": n_reg, "registry_s": round(t_reg, 3), "parser_s": round(t_parse, 3),
                       "events_per_s": round(n_reg / t_reg), "ratio": round(t_parse / t_reg, 3)}}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "goog.dbn.zst"
        events = np.concatenate(list(read(pair, chunk_rows=65_536)))
        n_rec = write_dbn_mbo(path, [events], ["GOOG"])

        def ours():
            return sum(len(c) for c in read(path, chunk_rows=65_536))

        def theirs():
            dec = dbn.DBNDecoder(compression=dbn.Compression.ZSTD)
            dec.write(path.read_bytes())
            return len(dec.decode()) - 1

        t_ours, n_ours = _best(ours)
        t_theirs, n_theirs = _best(theirs)
        assert n_theirs == n_rec
        res["dbn"] = {"records": n_rec, "events": n_ours, "registry_s": round(t_ours, 3),
                      "databento_decoder_s": round(t_theirs, 3), "records_per_s": round(n_rec / t_ours),
                      "ratio": round(t_theirs / t_ours, 3), "file_bytes": path.stat().st_size}
    return res


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)))

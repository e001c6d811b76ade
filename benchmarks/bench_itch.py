"""ITCH 5.0 parser: ``lob.replay.itch.read_itch`` against a plain ``struct.unpack`` Python loop.

Both parse the same generated file (random field contents, valid framing, a day's typical type mix) from
bytes in memory (``ratio``); the parser is also timed streaming the file from disk in its default 8 MB
chunks (``ratio_streamed``: reading and chunking included, the baseline still from memory). The baseline reads each length prefix, picks the message's ``struct.Struct`` and unpacks
it into a tuple, appending it to a list per type; it does no timestamp conversion (that would only slow it
down). Prints one JSON object; ``ratio`` = baseline time / numpy time.

    python benchmarks/bench_itch.py [n_messages]
"""
from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
import time

from lob.replay.itch import LENGTHS, encode_itch, iter_itch, random_messages, read_itch

FORMATS = {"A": "cHH6sQcI8sI", "F": "cHH6sQcI8sI4s", "E": "cHH6sQIQ", "C": "cHH6sQIQcI", "X": "cHH6sQI",
           "D": "cHH6sQ", "U": "cHH6sQQII", "P": "cHH6sQcI8sIQ", "Q": "cHH6sQ8sIQc", "B": "cHH6sQ", "S": "cHH6sc",
           "R": "cHH6s8sccIcc2scccccIc", "H": "cHH6s8scc4s", "I": "cHH6sQQc8sIIIcc", "O": "cHH6s8scIIIQII",
           "Y": "cHH6s8sc", "L": "cHH6s4s8sccc", "V": "cHH6sQQQ", "W": "cHH6sc", "K": "cHH6s8sIcI",
           "J": "cHH6s8sIIII", "h": "cHH6s8scc", "N": "cHH6s8sc"}


def baseline(data: bytes) -> dict:
    structs = {ord(t): struct.Struct("!" + f) for t, f in FORMATS.items()}
    hdr = struct.Struct("!H")
    out: dict = {}
    pos, n = 0, len(data)
    while pos < n:
        (length,) = hdr.unpack_from(data, pos)
        v = structs[data[pos + 2]].unpack_from(data, pos + 2)
        out.setdefault(v[0], []).append(v)
        pos += 2 + length
    return out


def main(n: int = 1_000_000) -> dict:
    for t, f in FORMATS.items():
        assert struct.calcsize("!" + f) == LENGTHS[t], t
    data = encode_itch(random_messages(n, seed=7))
    t0 = time.perf_counter()
    base = baseline(data)
    t_base = time.perf_counter() - t0
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        m = read_itch(data)
        best = min(best, time.perf_counter() - t0)
    assert len(m) == n == sum(len(v) for v in base.values())
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bench.itch")
        with open(path, "wb") as f:
            f.write(data)
        streamed = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            k = sum(len(part) for part in iter_itch(path))
            streamed = min(streamed, time.perf_counter() - t0)
        assert k == n
    # the two parsers agree on every add order
    a = base.get(b"A", [])
    assert [x[4] for x in a] == m["A"]["ref"].tolist()
    res = {"bench": "itch_parse", "messages": n, "bytes": len(data),
           "baseline_struct_s": round(t_base, 4), "lob_s": round(best, 4),
           "baseline_ns_per_msg": round(t_base / n * 1e9, 1), "lob_ns_per_msg": round(best / n * 1e9, 1),
           "lob_MB_per_s": round(len(data) / best / 1e6, 1), "ratio": round(t_base / best, 1),
           "streamed_s": round(streamed, 4), "ratio_streamed": round(t_base / streamed, 1), "goal_ratio": 50}
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)

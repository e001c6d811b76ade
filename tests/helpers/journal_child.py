"""A process that trades against a journaled exchange until it is killed, printing each ack."""
import os
import sys

import numpy as np

import lob

path, policy, run = sys.argv[1], sys.argv[2], int(sys.argv[3])
if os.path.exists(os.path.join(path, "journal.lobj")):
    ex = lob.Exchange.open(path, fsync=policy)
else:
    ex = lob.Exchange(symbols=["A", "B"], journal=path, fsync=policy)
rng = np.random.default_rng(run)
i = 0
out = sys.stdout
while True:
    sym = "A" if i % 3 else "B"
    oid = run * 10_000_000 + i + 1
    r = ex.submit(sym, "buy" if rng.integers(2) else "sell", int(rng.integers(1, 9)),
                  price=10 + int(rng.integers(-5, 6)) / 100, owner=f"o{i % 5}", order_id=oid, ts_ns=run * 10**12 + i)
    if i % 4 == 3:
        ex.cancel(sym, oid - 2, ts_ns=run * 10**12 + i)
    if i % 700 == 699:
        ex.snapshot()
    out.write(f"{oid}\n")
    out.flush()
    i += 1

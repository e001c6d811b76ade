"""Per-request stage latencies of the per-call path (lob.perf): ``LatencyRing`` (declared in _latency.pxd so the
venue layer calls it at C level), ``STAGES`` and ``MSG_TYPES`` naming its columns and kinds."""
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

import numpy as np
cimport numpy as cnp

cnp.import_array()


STAGES = ("parse", "risk", "match", "market_data", "end_to_end")
MSG_TYPES = ("submit", "cancel", "modify", "reduce", "control", "batch")


cdef class LatencyRing:
    """Per-request stage latencies (ns) written by the per-call path, drained into HDR histograms by
    ``lob.perf``. One row per sampled request: parse, risk, match, market_data, end_to_end, and the
    message type. ``sample_every`` = k times one request in k (1 = all)."""

    def __cinit__(self, int64_t cap=65536, int64_t sample_every=1):
        if cap <= 0 or sample_every <= 0:
            raise ValueError(f"cap and sample_every must be positive, got {cap}, {sample_every}")
        self.buf = <int64_t*>malloc(cap * 5 * sizeof(int64_t))
        self.kind = <uint8_t*>malloc(cap)
        if self.buf == NULL or self.kind == NULL:
            raise MemoryError()
        self.cap = cap
        self.n = 0
        self.sample_every = sample_every
        self.counter = 0
        self.on_full = None

    def __dealloc__(self):
        free(self.buf)
        free(self.kind)

    cdef int add(self, int kind, int64_t parse, int64_t risk, int64_t match, int64_t md, int64_t total) except -1:
        cdef int64_t* row
        if self.n == self.cap:
            if self.on_full is not None:
                self.on_full(self)
            if self.n == self.cap:
                self.n = 0        # nobody drained: keep the newest
        row = &self.buf[self.n * 5]
        row[0] = parse
        row[1] = risk
        row[2] = match
        row[3] = md
        row[4] = total
        self.kind[self.n] = <uint8_t>kind
        self.n += 1
        return 0

    def record(self, int kind, int64_t parse, int64_t risk, int64_t match, int64_t md, int64_t total):
        """Add one row from Python (the batch path times per batch)."""
        self.add(kind, parse, risk, match, md, total)

    def drain(self):
        """(latencies (n, 5) int64 array, kinds (n,) uint8 array) recorded so far; empties the ring."""
        lat = np.empty((self.n, 5), dtype=np.int64)
        kinds = np.empty(self.n, dtype=np.uint8)
        if self.n:
            memcpy(cnp.PyArray_DATA(lat), self.buf, self.n * 5 * sizeof(int64_t))
            memcpy(cnp.PyArray_DATA(kinds), self.kind, self.n)
        self.n = 0
        return lat, kinds

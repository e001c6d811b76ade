# The per-call latency ring of lob.perf, declared here so the venue layer (lob._core.ExchangeCore) calls
# want()/add() at C level.
cimport cython
from libc.stdint cimport int64_t, uint8_t


@cython.final
cdef class LatencyRing:
    cdef int64_t* buf            # cap x 5
    cdef uint8_t* kind
    cdef readonly int64_t n
    cdef readonly int64_t cap
    cdef public int64_t sample_every
    cdef readonly int64_t counter  # requests seen (sampled or not)
    cdef public object on_full   # called (with the ring) when it fills up

    cdef inline bint want(self) noexcept:
        self.counter += 1
        return self.counter % self.sample_every == 0

    cdef int add(self, int kind, int64_t parse, int64_t risk, int64_t match, int64_t md, int64_t total) except -1

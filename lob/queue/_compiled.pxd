# cython: language_level=3
"""C-level contract of compiled queue models (``lob.queue._compiled``), for ``cimport`` (e.g. from ``%%cython``).

A compiled queue model is a ``cdef class`` deriving from :class:`CompiledQueueModel` (or from
:class:`CompiledProbQueueModel`, overriding only ``prob``). Its three methods are the protocol of
:class:`lob.queue.models.QueueModel` in C, called by the backtest step loop without the GIL for each virtual
passive order: ``new_order`` when it arrives, ``trade`` for each trade at its price (returns the lots that
reach the order), ``depth`` after each change of the displayed size at its price. The estimate is kept in a
:c:type:`QueueState` (``ahead`` and ``traded`` as in the Python ``QueueState``; ``data`` two values of the
model's own).
"""
from libc.stdint cimport int64_t

cdef enum:                    # the built-in models' codes (QueueModel._code)
    M_RISK_AVERSE = 0
    M_POWER = 1               # f(back) / (f(back) + f(front)), f(x) = x**n
    M_POWER2 = 2              # f(back) / f(back + front)
    M_POWER3 = 3              # 1 - f(front / (front + back))
    M_LOG = 4                 # f(back) / (f(back) + f(front)), f(x) = log(1 + x)
    M_LOG2 = 5                # f(back) / f(back + front)
    M_LOGISTIC = 6            # sigmoid(a + b * front / (front + back) + c * log(1 + prev))


cdef struct QueueState:
    double ahead              # lots ahead of the order (the estimate)
    double traded             # lots traded at its price since the last depth change
    double data[2]            # the model's own values (zeros at new_order)


cdef class CompiledQueueModel:
    cdef public str name
    cdef void new_order(self, QueueState* st, double level_qty) noexcept nogil
    cdef int64_t trade(self, QueueState* st, double qty) noexcept nogil
    cdef void depth(self, QueueState* st, double prev_qty, double new_qty) noexcept nogil


cdef class CompiledProbQueueModel(CompiledQueueModel):
    cdef double prob(self, double front, double back, double prev) noexcept nogil


cdef class CPowerLogQueueModel(CompiledProbQueueModel):
    cdef int code
    cdef double a
    cdef double b
    cdef double c

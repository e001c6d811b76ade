# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled queue models: the protocol of :class:`lob.queue.models.QueueModel` as ``nogil`` C methods.

The backtest step loop (:mod:`lob.replay._steploop`) calls them for the virtual passive orders of
``impact="consume"``/``"off"`` without the GIL. :class:`CompiledQueueModel` itself is the risk-averse rule (the
base class's rule of :class:`lob.queue.models.QueueModel`); :class:`CompiledProbQueueModel` the probabilistic
update of :class:`lob.queue.models.ProbQueueModel` with ``prob`` to override; :class:`CPowerLogQueueModel` the
built-in probability functions. ``QueueModel.compiled()`` gives a built-in model's compiled form; each computes
the same floating-point expressions in the same order as its Python form, so a backtest fills identically.
Writing one's own: ``cimport`` from ``lob.queue._compiled`` (docs/queue_models.md).
"""
from libc.math cimport INFINITY, exp, isfinite, log1p, pow
from libc.stdint cimport int64_t

cdef class CompiledQueueModel:
    """Base of compiled queue models; as it stands, the risk-averse rule (hftbacktest's ``RiskAdverseQueueModel``):
    everything displayed at arrival is ahead, trades at the price eat the queue ahead first, the estimate never
    exceeds the displayed size."""

    def __init__(self, name="risk-averse"):
        self.name = name

    cdef void new_order(self, QueueState* st, double level_qty) noexcept nogil:
        st.ahead = level_qty
        st.traded = 0.0

    cdef int64_t trade(self, QueueState* st, double qty) noexcept nogil:
        st.traded += qty
        if qty > st.ahead:
            qty = qty - st.ahead
            st.ahead = 0.0
            return <int64_t>qty
        st.ahead -= qty
        return 0

    cdef void depth(self, QueueState* st, double prev_qty, double new_qty) noexcept nogil:
        st.traded = 0.0
        if new_qty < st.ahead:
            st.ahead = new_qty

    def __repr__(self):
        return f"{self.name} (compiled)"

    # --- from Python (tests, notebooks): one order's estimate through a sequence of calls --------------
    def simulate(self, double level_qty, calls):
        """Run one order's estimate: ``calls`` is a list of ``("trade", qty)`` / ``("depth", prev, new)``;
        returns ``(ahead after each call, the lots each trade reached)``."""
        cdef QueueState st
        st.data[0] = 0.0
        st.data[1] = 0.0
        self.new_order(&st, level_qty)
        aheads, reached = [st.ahead], []
        for c in calls:
            if c[0] == "trade":
                reached.append(self.trade(&st, c[1]))
            elif c[0] == "depth":
                self.depth(&st, c[1], c[2])
            else:
                raise ValueError(f"a call must be ('trade', qty) or ('depth', prev, new), got {c!r}")
            aheads.append(st.ahead)
        return aheads, reached


cdef class CompiledProbQueueModel(CompiledQueueModel):
    """hftbacktest's ``ProbQueueModel`` (:class:`lob.queue.models.ProbQueueModel`): a decrease of the level not
    explained by trades moves the order up by ``(1 - p) * chg``, ``p = prob(front, back, prev)`` the probability
    that the decrease was behind it. Override ``cdef double prob(self, double front, double back, double prev)
    noexcept nogil``; a result that is not finite counts as 1."""

    def __init__(self, name="prob"):
        self.name = name

    cdef double prob(self, double front, double back, double prev) noexcept nogil:
        return 1.0

    cdef void depth(self, QueueState* st, double prev_qty, double new_qty) noexcept nogil:
        cdef double chg = prev_qty - new_qty - st.traded
        cdef double front, back, p, est, over
        st.traded = 0.0
        if chg < 0:
            if new_qty < st.ahead:
                st.ahead = new_qty
            return
        front = st.ahead
        back = prev_qty - front
        p = self.prob(front, back, prev_qty)
        if not isfinite(p):
            p = 1.0
        over = back - p * chg
        est = front - (1.0 - p) * chg + (0.0 if 0.0 < over else over)      # Python's min(over, 0.0)
        if new_qty < est:
            est = new_qty
        st.ahead = 0.0 if 0.0 > est else est                                # max(est, 0.0)


cdef class CPowerLogQueueModel(CompiledProbQueueModel):
    """The built-in probability functions (``code``: 1-3 the power ones with ``a = n``, 4-5 the log ones,
    6 the fitted logistic with ``a, b, c``); built by ``QueueModel.compiled()``."""

    def __init__(self, int code, double a=0.0, double b=0.0, double c=0.0, name=None):
        if code < M_POWER or code > M_LOGISTIC:
            raise ValueError(f"code must be 1-6, got {code!r}")
        self.code = code
        self.a = a
        self.b = b
        self.c = c
        self.name = name or f"prob function {code}"

    cdef double prob(self, double front, double back, double prev) noexcept nogil:
        cdef double n = self.a, tot, z
        if self.code == M_POWER:
            return pow(back, n) / (pow(back, n) + pow(front, n))
        if self.code == M_POWER2:
            return pow(back, n) / pow(back + front, n)
        if self.code == M_POWER3:
            return 1.0 - pow(front / (front + back), n)
        if self.code == M_LOG:
            return log1p(back) / (log1p(back) + log1p(front))
        if self.code == M_LOG2:
            return log1p(back) / log1p(back + front)
        tot = front + back
        z = self.a + self.b * (front / tot if tot > 0 else 0.0) + self.c * log1p(prev)
        z = exp(-z)
        if z == INFINITY:
            return INFINITY         # the Python form's OverflowError: counts as 1
        return 1.0 / (1.0 + z)

"""Binary framing for the replay readers (ITCH 5.0): ``frame_be16`` walks the
``[u16 big-endian length][payload]`` chain, ``gather_frames`` copies the payloads per message type. Both nogil."""
cimport cython
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint64_t
from libc.string cimport memcpy, memset

import numpy as np
cimport numpy as cnp

cnp.import_array()

# ----------------------------------------------------------------------------------------------------
# Binary framing for replay readers
# ----------------------------------------------------------------------------------------------------
@cython.boundscheck(False)
@cython.wraparound(False)
def frame_be16(const uint8_t[::1] buf not None, Py_ssize_t n=-1, const int64_t[::1] lengths=None):
    """Offsets of the ``[u16 big-endian length][payload]`` frames in ``buf[:n]``, checked as it goes.

    Framing is a sequential chain (each length gives the next start), so it runs as one nogil C loop.

    Parameters
    ----------
    buf : contiguous uint8 buffer
    n : int
        Bytes of ``buf`` to frame (default all).
    lengths : int64 array of 256, optional
        The expected payload length per first payload byte (the ITCH message type); 0 = not a valid type.
        When given, the walk stops at the first frame whose length does not match its type.

    Returns
    -------
    (offsets, tail, bad)
        ``offsets[i]`` is the offset of frame i's length prefix (int64 array); ``tail`` the offset of the
        first incomplete frame (``n`` when the data ends on a frame boundary); ``bad`` the offset of the
        first frame whose length does not match its type, or -1.
    """
    cdef Py_ssize_t size = buf.shape[0] if n < 0 else n
    cdef Py_ssize_t pos = 0, k = 0, L, bad = -1
    if size > buf.shape[0]:
        raise ValueError(f"n {n} is past the buffer's end ({buf.shape[0]} bytes)")
    if lengths is not None and lengths.shape[0] != 256:
        raise ValueError(f"lengths must have 256 entries, got {lengths.shape[0]}")
    # sized for typical ITCH frames (about 30 bytes), grown when a stream of short frames fills it
    cdef Py_ssize_t cap = size // 16 + 64
    out = np.empty(cap, dtype=np.int64)
    cdef int64_t[::1] o = out
    cdef const uint8_t* p = &buf[0] if size else NULL
    cdef const int64_t* lens = &lengths[0] if lengths is not None else NULL
    cdef bint more = True
    while more:
        more = False
        with nogil:
            while pos + 2 <= size:
                L = (<Py_ssize_t>p[pos] << 8) | p[pos + 1]
                if lens != NULL and pos + 2 < size and (L == 0 or lens[p[pos + 2]] != L):
                    bad = pos
                    break
                if pos + 2 + L > size:
                    break
                if k == cap:
                    more = True
                    break
                o[k] = pos
                k += 1
                pos += 2 + L
        if more:
            cap = min(2 * cap, size // 3 + 1)     # a frame is at least 3 bytes
            out = np.resize(out, cap)
            o = out
    return (out[:k] if 2 * k >= cap else out[:k].copy()), pos, bad


cdef enum:
    _GATHER_COPY = 64     # bytes per fixed-size record copy in gather_frames (ITCH messages are at most 50)


def gather_frames(const uint8_t[::1] buf not None, const int64_t[::1] offsets not None,
                  const int64_t[::1] lengths not None, const uint8_t[::1] keep=None):
    """Copy the payloads of framed records into one contiguous byte array per record type.

    ``offsets`` are length-prefix offsets as :func:`frame_be16` returns them, already checked against
    ``lengths`` (the fixed payload length per type byte). ``keep`` (one byte per frame, optional) selects
    frames. Returns ``{type_byte: (payload bytes as uint8 array of count * length, frame indices int64)}``
    with frames in file order within each type.
    """
    cdef Py_ssize_t nf = offsets.shape[0], i, t, L, size = buf.shape[0]
    if lengths.shape[0] != 256:
        raise ValueError(f"lengths must have 256 entries, got {lengths.shape[0]}")
    if keep is not None and keep.shape[0] != nf:
        raise ValueError(f"keep has {keep.shape[0]} entries for {nf} frames")
    cdef int64_t counts[256]
    cdef uint8_t* dst[256]
    cdef int64_t* idx[256]
    memset(counts, 0, sizeof(counts))
    cdef const uint8_t* p = &buf[0] if size else NULL
    cdef const int64_t* off = &offsets[0] if nf else NULL
    cdef const uint8_t* kp = &keep[0] if keep is not None and nf else NULL
    cdef const int64_t* lens = &lengths[0]
    cdef Py_ssize_t err = -1
    with nogil:
        # one pass checks every offset (nothing outside the buffer is ever read) and counts per type
        for i in range(nf):
            if off[i] < 0 or off[i] + 3 > size:
                err = i
                break
            if kp != NULL and not kp[i]:
                continue
            t = p[off[i] + 2]
            if lens[t] == 0 or off[i] + 2 + lens[t] > size:
                err = i
                break
            counts[t] += 1
    if err >= 0:
        raise ValueError(f"frame {err} at offset {off[err]}: no known type or past the buffer's end ({size} bytes)")
    # one allocation for all types (large enough for the allocator's huge pages: far fewer page faults)
    cdef int64_t total = 0, n_kept = 0
    for t in range(256):
        total += counts[t] * lens[t]
        n_kept += counts[t]
    data_all = np.empty(total + 256 * _GATHER_COPY, dtype=np.uint8)
    where_all = np.empty(n_kept, dtype=np.int64)
    cdef int64_t a = 0, b = 0
    out = {}
    for t in range(256):
        if counts[t]:
            data = data_all[a:a + counts[t] * lens[t]]
            where = where_all[b:b + counts[t]]
            a += counts[t] * lens[t] + _GATHER_COPY     # the last record's fixed-size copy spills here
            b += counts[t]
            dst[t] = <uint8_t*>cnp.PyArray_DATA(data)
            idx[t] = <int64_t*>cnp.PyArray_DATA(where)
            out[t] = (data, where)
    cdef int64_t o
    with nogil:
        for i in range(nf):
            if kp != NULL and not kp[i]:
                continue
            o = off[i] + 2
            t = p[o]
            L = lens[t]
            if o + _GATHER_COPY <= size:
                # a fixed-size copy compiles to a few vector moves, with no branch on the (random) length;
                # the bytes past the record are overwritten by the next record of its type or the padding
                memcpy(dst[t], p + o, _GATHER_COPY)
            else:
                memcpy(dst[t], p + o, L)
            dst[t] += L
            idx[t][0] = i
            idx[t] += 1
    return out

"""The journal's compact record codec: ``pack_words`` / ``unpack_words`` (delta + zigzag varint per 8-byte
word, nogil). Format: lob.journal.format, PACKED_* payloads."""
cimport cython
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint64_t
from libc.string cimport memcpy, memset

import numpy as np
cimport numpy as cnp

cnp.import_array()

# ----------------------------------------------------------------------------------------------------
# Compact record codec for the journal
# ----------------------------------------------------------------------------------------------------
@cython.boundscheck(False)
@cython.wraparound(False)
def pack_words(const uint8_t[::1] records not None, Py_ssize_t itemsize):
    """Encode fixed-size records compactly: each 8-byte word as its difference from the same word of the
    previous record, zigzag varint coded, zero differences skipped.

    Per record: a little-endian u16 mask of the words that changed, then one varint per changed word.
    Lossless for any bytes (:func:`unpack_words` inverts it); records of one stream (events, reports,
    fills) repeat most fields or move them by small steps, so they shrink several times. Runs nogil.

    Parameters
    ----------
    records : contiguous uint8 buffer of ``n * itemsize`` bytes
    itemsize : int
        A multiple of 8, at most 128 (16 words).

    Returns
    -------
    numpy.ndarray of uint8
    """
    if itemsize <= 0 or itemsize % 8 or itemsize > 128:
        raise ValueError(f"itemsize must be a multiple of 8 up to 128, got {itemsize}")
    cdef Py_ssize_t size = records.shape[0]
    if size % itemsize:
        raise ValueError(f"{size} bytes is not a whole number of {itemsize}-byte records")
    cdef Py_ssize_t n = size // itemsize, W = itemsize // 8, i, j, k = 0
    out = np.empty(n * (2 + W * 10) + 16, dtype=np.uint8)       # worst case: every word, 10 varint bytes
    cdef uint8_t* o = <uint8_t*>cnp.PyArray_DATA(out)
    cdef const uint8_t* src = &records[0] if size else NULL
    cdef uint64_t prev[16]
    cdef uint64_t w, d, z
    cdef uint16_t mask
    cdef Py_ssize_t mpos
    memset(prev, 0, sizeof(prev))
    with nogil:
        for i in range(n):
            mpos = k
            k += 2
            mask = 0
            for j in range(W):
                memcpy(&w, src + i * itemsize + j * 8, 8)
                d = w - prev[j]
                if d:
                    prev[j] = w
                    mask |= <uint16_t>(1 << j)
                    z = (d << 1) ^ (<uint64_t>(<int64_t>d >> 63))      # zigzag: small +-steps stay small
                    while z >= 0x80:
                        o[k] = <uint8_t>(z | 0x80)
                        z >>= 7
                        k += 1
                    o[k] = <uint8_t>z
                    k += 1
            o[mpos] = <uint8_t>(mask & 0xFF)
            o[mpos + 1] = <uint8_t>(mask >> 8)
    return out[:k].copy()


@cython.boundscheck(False)
@cython.wraparound(False)
def unpack_words(const uint8_t[::1] packed not None, Py_ssize_t n, Py_ssize_t itemsize):
    """Decode ``n`` records of ``itemsize`` bytes packed by :func:`pack_words`; returns a uint8 array.

    Raises ``ValueError`` when the bytes do not hold exactly ``n`` records.
    """
    if itemsize <= 0 or itemsize % 8 or itemsize > 128:
        raise ValueError(f"itemsize must be a multiple of 8 up to 128, got {itemsize}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    cdef Py_ssize_t size = packed.shape[0], W = itemsize // 8, i, j, k = 0
    cdef int shift
    out = np.empty(n * itemsize, dtype=np.uint8)
    cdef uint8_t* o = <uint8_t*>cnp.PyArray_DATA(out)
    cdef const uint8_t* p = &packed[0] if size else NULL
    cdef uint64_t prev[16]
    cdef uint64_t z, b
    cdef uint16_t mask
    cdef bint bad = False
    memset(prev, 0, sizeof(prev))
    with nogil:
        for i in range(n):
            if k + 2 > size:
                bad = True
                break
            mask = p[k] | (<uint16_t>p[k + 1] << 8)
            k += 2
            if mask >> W:
                bad = True
                break
            for j in range(W):
                if mask & (1 << j):
                    z = 0
                    shift = 0
                    while True:
                        if k >= size or shift > 63:
                            bad = True
                            break
                        b = p[k]
                        k += 1
                        z |= (b & 0x7F) << shift
                        shift += 7
                        if b < 0x80:
                            break
                    if bad:
                        break
                    prev[j] += (z >> 1) ^ (0 - (z & 1))
            if bad:
                break
            memcpy(o + i * itemsize, prev, itemsize)
    if bad or k != size:
        raise ValueError(f"packed records are inconsistent: {size} bytes for {n} records of {itemsize} bytes")
    return out

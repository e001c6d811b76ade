"""Record arrays allocated from C, for the compiled modules built with numpy's headers (lob._engine, lob._core).

Kept apart from ``lob/_engine.pxd`` so that a module which cimports the engine's structs or the step loop
(a ``%%cython`` cell in Jupyter, a user's extension) compiles without numpy's include directory.
"""
from cpython.ref cimport Py_INCREF

cimport numpy as cnp


cdef extern from "numpy/arrayobject.h":
    object _PyArray_Empty "PyArray_Empty"(int nd, cnp.npy_intp* dims, cnp.dtype descr, int fortran)


cdef inline object _empty(cnp.dtype descr, cnp.npy_intp n):
    # np.empty(n, dtype=descr) without the Python-level call (~1 us -> ~100 ns for a structured dtype);
    # PyArray_Empty steals a reference to the descriptor
    Py_INCREF(descr)
    return _PyArray_Empty(1, &n, descr, 0)

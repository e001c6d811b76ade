"""Build the compiled extensions: the engine ``lob._engine``, the venue layer over it ``lob._core``,
``lob.marketdata._recorder``, ``lob.queue._shadow``, the backtest step loop ``lob.replay._steploop``, the
compiled market makers ``lob.mm._compiled``, the simulation loop ``lob.sim._simloop``, the journal codec
``lob.journal._codec``, ITCH framing ``lob.replay._itchframe`` and perf's latency ring ``lob.perf._latency``.
Everything else lives in pyproject.toml.

Environment switches: ``LOB_DEBUG=1`` (bounds checks on), ``LOB_TRACE=1`` (line tracing for coverage),
``LOB_ANNOTATE=1`` (annotated HTML next to the .pyx).
"""
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("LOB_DEBUG") == "1"
TRACE = os.environ.get("LOB_TRACE") == "1"

directives = {
    "language_level": 3,
    "embedsignature": True,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "linetrace": TRACE,
}
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if TRACE:
    macros.append(("CYTHON_TRACE_NOGIL", "1"))

exts = [Extension(
    name,
    [path],
    include_dirs=[np.get_include()],
    define_macros=macros,
    extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
) for name, path in (("lob._engine", "lob/_engine.pyx"),
                     # the venue layer (ExchangeCore): cimports the engine (lob/_engine.pxd)
                     ("lob._core", "lob/_core.pyx"),
                     # the market-data recorder the engine feeds through its MdPort (lob/_engine.pxd)
                     ("lob.marketdata._recorder", "lob/marketdata/_recorder.pyx"),
                     # the backtest step loop and the compiled makers: they cimport the engine's C entry points
                     ("lob.replay._steploop", "lob/replay/_steploop.pyx"),
                     ("lob.mm._compiled", "lob/mm/_compiled.pyx"),
                     # the simulator's compiled loop: populations, compiled makers, risk checks (cimports both)
                     ("lob.sim._simloop", "lob/sim/_simloop.pyx"),
                     # roles moved out of the core into the packages they serve
                     ("lob.journal._codec", "lob/journal/_codec.pyx"),
                     ("lob.replay._itchframe", "lob/replay/_itchframe.pyx"),
                     ("lob.perf._latency", "lob/perf/_latency.pyx"))]

# the shadow-order pass of lob.queue (C++ for std::vector of fill records)
shadow = Extension(
    "lob.queue._shadow",
    ["lob/queue/_shadow.pyx"],
    include_dirs=[np.get_include()],
    define_macros=macros,
    language="c++",
    extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
)

setup(ext_modules=cythonize(exts + [shadow], compiler_directives=directives,
                            annotate=os.environ.get("LOB_ANNOTATE") == "1"))

"""The import rules of docs/architecture.md, read from the source (AST of every ``lob`` module, text of every
``.pyx``/``.pxd``): no import cycles among lob modules (function-level imports count), only the venue layer
touches the engine, only lob.server imports tornado, only lob.viz (and lob.server above it) bokeh/ipywidgets."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lob"

#: the venue layer: the compiled core (and the engine unit split out of it) and the Python Exchange over it
VENUE = {"lob._core", "lob._engine", "lob._venue", "lob.exchange"}


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_name(p): p for p in sorted(PKG.rglob("*.py"))}
#: every .pyx and .pxd with its module name (a module with both appears twice)
COMPILED = [(_name(p), p) for p in sorted(PKG.rglob("*.pyx")) + sorted(PKG.rglob("*.pxd"))]
TREES = {m: ast.parse(p.read_text(), str(p)) for m, p in MODULES.items()}


def _imports(module: str, tree: ast.AST) -> set[str]:
    """Every module a module imports, at any level (``from lob.x import y`` counts as lob.x, or lob.x.y when
    that is a module)."""
    out = set()
    pkg = module if MODULES.get(module, Path()).name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            subs = {f"{base}.{a.name}" for a in node.names} & set(MODULES)
            out |= subs
            if len(subs) < len(node.names):                # a name that is not a submodule comes from base
                out.add(base)
    return out


IMPORTS = {m: _imports(m, t) for m, t in TREES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected groups (Tarjan) of the lob import graph; a package's ``__init__`` re-exports are
    edges too, except into the top ``lob`` package (every module's import runs it first anyway)."""
    graph = {m: sorted(t for t in ts if t in MODULES and t != m and t != "lob") for m, ts in IMPORTS.items()}
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for m in graph:
        if m not in index:
            visit(m)
    return out


def test_the_scan_sees_the_package():
    assert {"lob", "lob.book", "lob.exchange", "lob.replay.backtest", "lob.server.hub"} <= set(MODULES)
    assert "lob.exchange" in IMPORTS["lob.book"]          # the scan reads imports at all


#: compiled loops that sit on the engine's C ports and cimport its contract (lob/_engine.pxd) besides the venue
#: layer: the backtest step loop drives a typed Engine without the per-call Python path (issue #9/#10), and the
#: market-data recorder is fed through the engine's MdPort from its output records, and the simulator's loop
#: (lob.sim._simloop) feeds the populations' and makers' requests through core_apply (issue #13)
ENGINE_C_CLIENTS = {"lob.replay._steploop", "lob.marketdata._recorder", "lob.sim._simloop"}


def test_no_import_cycles_among_lob_modules():
    # the journal plugs into the exchange through lob.ports (JournalPort, register_journal): lob.exchange
    # imports nothing of lob.journal, at any level
    assert _cycles() == []


def test_the_exchange_imports_no_consumer_of_its_ports():
    # (lob.marketdata and lob.perf are still created by the exchange itself: Exchange(marketdata=True), ex.perf)
    consumers = ("lob.journal", "lob.server", "lob.viz", "lob.book")
    assert sorted(t for t in IMPORTS["lob.exchange"] if t.startswith(consumers)) == []
    assert {m for m in IMPORTS["lob.ports"] if m.startswith("lob")} == set()      # the ports sit below both


def test_book_sits_above_the_exchange():
    assert "lob.book" not in IMPORTS["lob.exchange"]


def test_only_the_venue_layer_imports_the_engine():
    bad = sorted(m for m, ts in IMPORTS.items() if m not in VENUE and ts & {"lob._engine"})
    bad += sorted(m for m, p in COMPILED if m not in VENUE | ENGINE_C_CLIENTS
                  and re.search(r"^\s*(from\s+lob\._engine\s+c?import|c?import\s+lob\._engine)", p.read_text(), re.M))
    assert bad == []


def _c_definitions(text: str) -> set[str]:
    """Names a .pyx/.pxd defines at module level: cdef classes, structs, enums, ctypedefs and C functions."""
    out = set(re.findall(r"^(?:cdef|cpdef)\s+(?:class|struct|enum)\s+(\w+)", text, re.M))
    out |= set(re.findall(r"^ctypedef\s[^\n(]*?\(\*(\w+)\)", text, re.M))
    out |= {m for m in re.findall(r"^cdef\s+(?:inline\s+)?(?!class\b|struct\b|enum\b|extern\b)[\w\s\*]*?\b(\w+)\s*\(",
                                   text, re.M)}
    return out


def test_the_engine_is_its_own_compilation_unit():
    # the engine lives in lob/_engine.pyx, and lob/_engine.pxd declares its structs and cdef class Engine, so
    # that other compiled modules can cimport it; the venue layer (lob/_core.pyx) defines none of it
    engine_pxd, engine_pyx, core_pyx = PKG / "_engine.pxd", PKG / "_engine.pyx", PKG / "_core.pyx"
    assert engine_pxd.exists() and engine_pyx.exists(), "the engine is not a compilation unit of its own"
    assert re.search(r"^cdef class Engine:", engine_pxd.read_text(), re.M), "_engine.pxd does not declare Engine"
    engine = _c_definitions(engine_pxd.read_text()) | _c_definitions(engine_pyx.read_text())
    assert {"Engine", "BookC", "Event", "Level", "MdPort", "_book_new", "_id_find", "_level_get", "_view",
            "core_apply"} <= engine
    core = _c_definitions(core_pyx.read_text())
    assert "ExchangeCore" in core
    assert core & engine == set(), f"engine internals defined in lob/_core.pyx: {sorted(core & engine)}"
    assert not (PKG / "_core.pxd").exists() or "cdef struct" not in (PKG / "_core.pxd").read_text()
    assert re.search(r"^from\s+lob\._engine\s+cimport\s+Engine\b", core_pyx.read_text(), re.M)  # the typed engine
    assert '("lob._engine", "lob/_engine.pyx")' in (ROOT / "setup.py").read_text()
    import lob._core
    import lob._engine
    assert lob._core.Engine is lob._engine.Engine                   # the old Python name still works


def engine_readers(trees: dict) -> set[str]:
    """Modules outside the venue layer that touch an ``_engine`` attribute."""
    return {m for m, t in trees.items() if m not in VENUE for node in ast.walk(t)
            if isinstance(node, ast.Attribute) and node.attr == "_engine"}


def test_only_the_venue_layer_touches_an_exchange_engine():
    assert engine_readers(TREES) == set()


def _exchange_private_names() -> set[str]:
    """Private names of an exchange: those of ``lob.Exchange`` (and its compiled base), the attributes
    lob/exchange.py sets on ``self``, and the C slots ``ExchangeCore`` declares (the journal's hooks among them)."""
    import lob

    names = {n for n in dir(lob.Exchange) if n.startswith("_") and not n.startswith("__")}
    names |= {n.attr for n in ast.walk(TREES["lob.exchange"]) if isinstance(n, ast.Attribute)
              and isinstance(n.value, ast.Name) and n.value.id == "self" and n.attr.startswith("_")}
    core = (PKG / "_core.pyx").read_text()
    body = core[core.index("cdef class ExchangeCore"):]
    names |= set(re.findall(r"^    cdef [\w\s\[\]\*]*?\b(_\w+)\s*(?:\[[^\n]*)?(?:#[^\n]*)?$", body, re.M))
    return {n for n in names if not n.startswith("__")}


EXCHANGE_PRIVATE = _exchange_private_names()


def test_the_exchange_private_names_are_read():
    assert {"_engine", "_infos", "_perf", "_wal", "_wal_out", "_stage_on", "_intake_error", "_stage_limit",
            "_latency", "_listeners"} <= EXCHANGE_PRIVATE


def private_writes(trees: dict, names=None) -> list[str]:
    """``module:line target`` of every write (assignment, augmented assignment, ``del``, ``setattr``) of an
    exchange's private attribute (one of ``names``, default :data:`EXCHANGE_PRIVATE`) on an object other than
    ``self``/``cls``, outside the venue layer: an exchange's private slots are set by the exchange alone,
    consumers attach through its ports (``attach_journal``, ``attach_perf``, ``set_md_port``, listeners)."""
    names = EXCHANGE_PRIVATE if names is None else names
    out = []
    for m, t in trees.items():
        if m in VENUE:
            continue
        for node in ast.walk(t):
            if isinstance(node, (ast.Assign, ast.Delete)):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("setattr", "delattr") and len(node.args) >= 2
                  and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
                  and node.args[1].value in names):
                out.append(f"{m}:{node.lineno} {ast.unparse(node)}")
                continue
            else:
                continue
            flat = [e for x in targets for e in (x.elts if isinstance(x, (ast.Tuple, ast.List)) else [x])]
            for x in flat:
                if (isinstance(x, ast.Attribute) and x.attr in names
                        and not (isinstance(x.value, ast.Name) and x.value.id in ("self", "cls"))):
                    out.append(f"{m}:{node.lineno} {ast.unparse(x)}")
    return out


def test_nothing_outside_the_venue_layer_writes_an_exchange_private_attribute():
    assert private_writes(TREES) == []


def test_the_private_write_check_sees_the_hooks_it_forbids():
    # the shapes the journal and the perf analyzer used before the ports (issue #11): each is caught
    before = ast.parse("def attach(exchange, j):\n"
                       "    exchange._wal = j.write\n"
                       "    exchange._stage_limit += 1\n"
                       "    j.exchange._intake_error = 'x'\n"
                       "    a, exchange._perf = 1, j\n"
                       "    setattr(exchange, '_latency', None)\n"
                       "    del exchange._wal_out\n"
                       "    self._ok = exchange._not_a_write\n"
                       "    agent._hist = []\n"
                       "    f.__doc__ = 'dunders are fine'\n")
    found = private_writes({"lob.journal.journal": before})
    assert sorted(f.split(" ", 1)[1] for f in found) == sorted([
        "exchange._wal", "exchange._stage_limit", "j.exchange._intake_error", "exchange._perf",
        "setattr(exchange, '_latency', None)", "exchange._wal_out"])
    assert private_writes({"lob.exchange": before}) == []         # the venue layer sets its own slots
    assert engine_readers({"lob.server.orders": ast.parse("x = ex._engine.next_auto_id")}) == {"lob.server.orders"}


@pytest.mark.parametrize("lib, allowed", [
    ("tornado", ("lob.server",)),
    ("bokeh", ("lob.viz", "lob.server")),
    ("jupyter_bokeh", ("lob.viz", "lob.server")),
    ("ipywidgets", ("lob.viz", "lob.server")),
])
def test_ui_libraries_are_imported_only_by_their_layer(lib, allowed):
    bad = sorted(m for m, ts in IMPORTS.items()
                 if any(t == lib or t.startswith(lib + ".") for t in ts)
                 and not any(m == a or m.startswith(a + ".") for a in allowed))
    assert bad == [], f"{lib} imported outside {allowed}: {bad}"

"""The ``.pyi`` stubs of the compiled modules are current, and ``help()`` shows real signatures and docstrings.

A stub is stale when the compiled module changed after ``scripts/gen_stubs.py`` last ran: regenerate with
``.venv/bin/python scripts/gen_stubs.py`` (after ``setup.py build_ext --inplace``).
"""
from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import pydoc
import subprocess
import sys
from pathlib import Path

import pytest

import lob

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import gen_stubs  # noqa: E402

MODULES = gen_stubs.compiled_modules()
REGENERATE = "stale stub: run `.venv/bin/python scripts/gen_stubs.py` and commit the .pyi"


def test_every_compiled_module_is_found():
    names = [name for name, _ in MODULES]
    assert "lob._core" in names and "lob._engine" in names and "lob.queue._shadow" in names, names


@pytest.mark.parametrize("name,pyx", MODULES, ids=[name for name, _ in MODULES])
def test_stub_is_what_the_generator_writes(name, pyx):
    stub = pyx.with_suffix(".pyi")
    assert stub.exists(), f"{stub.relative_to(ROOT)} is missing: {REGENERATE}"
    assert stub.read_text() == gen_stubs.render(name, pyx), f"{stub.relative_to(ROOT)}: {REGENERATE}"


def test_check_mode_reports_current_stubs_and_writes_nothing():
    before = {p: p.with_suffix(".pyi").stat().st_mtime_ns for _, p in MODULES}
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_stubs.py"), "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "up to date" in run.stdout, run.stdout + run.stderr
    assert before == {p: p.with_suffix(".pyi").stat().st_mtime_ns for _, p in MODULES}


@pytest.mark.parametrize("ctype,expected", [
    ("int", "int"), ("int64_t", "int"), ("uint64_t", "int"), ("Py_ssize_t", "int"), ("unsigned long long", "int"),
    ("double", "float"), ("bint", "bool"), ("str", "str"), ("list", "list"),
    ("const Event[::1]", "np.ndarray"), ("OrderView[::1]", "np.ndarray"), ("const uint8_t[::1] not None", "np.ndarray"),
    ("SymbolInfo", "SymbolInfo"), ("object", None), ("Engine", None),
])
def test_c_types_map_to_python_annotations(ctype, expected):
    assert gen_stubs.py_type(ctype, {"SymbolInfo"}) == expected


def test_embedded_signature_gives_types_and_the_documentation():
    doc = "Engine.depth(self, int sym, int side, Py_ssize_t n_levels=10) -> double\n\nArray of levels."
    assert gen_stubs.embedded(doc, "depth") == (
        {"sym": "int", "side": "int", "n_levels": "Py_ssize_t"}, "double", "Array of levels.")
    assert gen_stubs.embedded("No signature here.", "depth") == ({}, None, "No signature here.")


def _stub_tree(pyx: Path) -> dict[str, ast.AST]:
    """Top-level names of a stub: ``{name: node}`` (classes, functions, annotated constants, re-exports)."""
    out: dict[str, ast.AST] = {}
    for node in ast.parse(pyx.with_suffix(".pyi").read_text()).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
        elif isinstance(node, ast.ImportFrom):
            out.update({a.asname: node for a in node.names if a.asname == a.name})
    return out


def _stub_params(fn: ast.FunctionDef) -> list[tuple[str, str, bool]]:
    """(name, kind, has a default) of each parameter of a stub function."""
    a = fn.args
    pos = a.posonlyargs + a.args
    defaults = [False] * (len(pos) - len(a.defaults)) + [True] * len(a.defaults)
    out = [(p.arg, "POSITIONAL_ONLY" if p in a.posonlyargs else "POSITIONAL_OR_KEYWORD", d)
           for p, d in zip(pos, defaults)]
    if a.vararg:
        out.append((a.vararg.arg, "VAR_POSITIONAL", False))
    out += [(p.arg, "KEYWORD_ONLY", d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        out.append((a.kwarg.arg, "VAR_KEYWORD", False))
    return out


def _runtime_params(fn) -> list[tuple[str, str, bool]]:
    return [(p.name, p.kind.name, p.default is not inspect.Parameter.empty)
            for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name,pyx", MODULES, ids=[name for name, _ in MODULES])
def test_every_public_name_has_a_stub_entry_with_the_same_parameters(name, pyx):
    """Independent of the generator's text: read the stub's syntax tree, compare with the live module."""
    mod = importlib.import_module(name)
    stub = _stub_tree(pyx)
    public = [k for k in dir(mod) if not k.startswith("_") and not inspect.ismodule(getattr(mod, k))]
    missing = [k for k in public if k not in stub]
    assert not missing, f"{name}: no stub entry for {missing}: {REGENERATE}"
    for k in public:
        obj, node = getattr(mod, k), stub[k]
        if isinstance(node, ast.ImportFrom):                # a re-export: the stub names the module it comes from
            assert node.module == obj.__module__ != name, f"{name}.{k}: {REGENERATE}"
        elif inspect.isroutine(obj):
            assert isinstance(node, ast.FunctionDef), k
            assert _stub_params(node) == _runtime_params(obj), f"{name}.{k}: {REGENERATE}"
        elif isinstance(obj, type) and obj.__module__ == name:
            assert isinstance(node, ast.ClassDef), k
            methods = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}
            names = set(methods) | {t.id for n in node.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                                    for t in (n.targets if isinstance(n, ast.Assign) else [n.target])}
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                assert attr in names, f"{name}.{k}.{attr} has no stub entry: {REGENERATE}"
                if inspect.isroutine(member):
                    assert _stub_params(methods[attr]) == _runtime_params(member), \
                        f"{name}.{k}.{attr}: {REGENERATE}"


def test_stubtest_agrees_with_the_compiled_modules(tmp_path):
    """mypy's own stub checker: every name, parameter, property and final/disjoint class as at runtime."""
    pytest.importorskip("mypy", reason="mypy (lobkit[test]) is not installed: stubtest cannot run")
    cfg = tmp_path / "mypy.ini"
    # only the stubs are checked: the pure-Python modules they import are read, not type-checked
    cfg.write_text("[mypy]\nfollow_imports = silent\nignore_missing_imports = True\ncache_dir = "
                   f"{tmp_path / 'cache'}\n")
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", *[name for name, _ in MODULES], "--mypy-config-file", str(cfg),
         "--allowlist", str(ROOT / "tests" / "stubtest_allowlist.txt"), "--ignore-unused-allowlist"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


# --- help() and inspect.signature on the public API ----------------------------------------------------------

def _public_callables():
    """(qualified name, object) of every public function, method and property reachable from ``lob``."""
    for name in lob.__all__:
        obj = getattr(lob, name)
        if inspect.isfunction(obj) or inspect.isbuiltin(obj):
            yield f"lob.{name}", obj
        elif isinstance(obj, type):
            yield f"lob.{name}", obj
            if issubclass(obj, (BaseException, int)):      # exceptions and enums: the class docstring
                continue
            for attr in dir(obj):
                if attr.startswith("_"):
                    continue
                member = inspect.getattr_static(obj, attr)
                if isinstance(member, (classmethod, staticmethod)):
                    member = member.__func__
                if callable(member) or isinstance(member, property) or inspect.isgetsetdescriptor(member):
                    yield f"lob.{name}.{attr}", member


PUBLIC = list(_public_callables())


@pytest.mark.parametrize("qualname,obj", PUBLIC, ids=[q for q, _ in PUBLIC])
def test_public_api_has_real_docstrings(qualname, obj):
    # Cython embeds the signature as the first line: the documentation is what follows it
    text = gen_stubs.embedded(inspect.getdoc(obj), qualname.rsplit(".", 1)[-1])[2].strip()
    assert text, f"{qualname} has no docstring"
    assert not text.lower().startswith("see "), f"{qualname}'s docstring only points elsewhere: {text!r}"


@pytest.mark.parametrize("qualname,obj", [(q, o) for q, o in PUBLIC if inspect.isroutine(o)],
                         ids=[q for q, o in PUBLIC if inspect.isroutine(o)])
def test_public_methods_have_real_signatures(qualname, obj):
    params = list(inspect.signature(obj).parameters.values())
    generic = [p.kind for p in params] == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]
    assert not generic, f"{qualname} shows a placeholder signature {inspect.signature(obj)}"


def test_help_on_the_order_methods_shows_parameters_and_docs():
    for fn, params in ((lob.Exchange.submit, ("symbol", "side", "qty", "price", "owner", "post_only")),
                       (lob.Exchange.cancel, ("order_id", "owner")),
                       (lob.Exchange.modify, ("qty", "price", "stop_price")),
                       (lob.Exchange.reduce, ("by_qty",)),
                       (lob.Book.submit, ("side", "qty", "display_qty")),
                       (lob.Book.cancel, ("order_id",)), (lob.Book.modify, ("qty",)), (lob.Book.reduce, ("by_qty",))):
        text = pydoc.render_doc(fn, renderer=pydoc.plaintext)
        assert "see lob.Exchange" not in text
        for p in params:
            assert f"{p} :" in text, (fn.__qualname__, p)      # documented in the Parameters section
            assert p in str(inspect.signature(fn)), (fn.__qualname__, p)
        assert "Returns" in text and "Examples" in text, fn.__qualname__


BOOK_FORWARDS = ["submit", "cancel", "modify", "reduce"]
# every public Book method that has an Exchange namesake taking ``symbol`` first
BOOK_LIKE_EXCHANGE = sorted(
    m for m in dir(lob.Book) if not m.startswith("_") and callable(getattr(lob.Book, m))
    and list(inspect.signature(getattr(lob.Exchange, m, lambda self: None)).parameters)[1:2] == ["symbol"])


def test_the_per_order_methods_are_among_the_book_methods_checked():
    assert set(BOOK_FORWARDS) <= set(BOOK_LIKE_EXCHANGE), BOOK_LIKE_EXCHANGE


@pytest.mark.parametrize("method", BOOK_LIKE_EXCHANGE)
def test_book_methods_take_the_exchange_parameters_but_symbol(method):
    """help(Book.x) shows the parameters of Exchange.x (not ``**kwargs``), and its docstring documents them."""
    book = inspect.signature(getattr(lob.Book, method))
    ex = inspect.signature(getattr(lob.Exchange, method))
    expect = [p for p in ex.parameters.values() if p.name != "symbol"]
    assert [(p.name, p.default) for p in book.parameters.values()] == [(p.name, p.default) for p in expect], (
        f"Book.{method}{book} should take the parameters of Exchange.{method}{ex} but symbol "
        "(spelled out, with @_exchange_doc for the docstring)")
    doc = inspect.getdoc(getattr(lob.Book, method))
    assert "symbol :" not in doc, method


@pytest.mark.parametrize("method", BOOK_FORWARDS)
def test_book_order_methods_forward_every_argument(method):
    """Every parameter reaches the exchange: a Book call and the Exchange call give the same report."""
    kwargs = {"submit": dict(side="sell", qty=4, price=10.5, type="limit", tif="day", owner="ann",
                             post_only=True, display_qty=2, order_id=77, ts_ns=123),
              "cancel": dict(owner="ann", ts_ns=456),
              "modify": dict(qty=6, price=10.75, owner="ann", ts_ns=789),
              "reduce": dict(by_qty=1, owner="ann", ts_ns=999)}[method]
    reports = []
    for via_book in (True, False):
        ex = lob.Exchange(symbols=["X"], tick_size=0.25, marketdata=False)
        target = ex.book("X") if via_book else ex
        head = () if via_book else ("X",)
        if method != "submit":
            ex.submit("X", "sell", 4, price=10.5, owner="ann", display_qty=2, order_id=77, ts_ns=1)
            r = getattr(target, method)(*head, 77, **kwargs)
        else:
            r = target.submit(*head, **kwargs)
        reports.append((r.as_dict(), ex.book("X").orders_array().tolist(), ex.state_hash()))
    assert reports[0] == reports[1]


def test_doctests_of_the_compiled_core():
    import lob._core

    result = doctest.testmod(lob._core)
    assert result.attempted > 0 and result.failed == 0

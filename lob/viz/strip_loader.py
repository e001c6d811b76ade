"""Drop the inline BokehJS loader outputs (~2 MB each) from saved notebooks: ``python -m lob.viz.strip_loader NB...``.

A kernel that makes a :mod:`lob.viz` widget publishes BokehJS once (:func:`lob.viz.output_notebook`); a
notebook executed and saved for the repository or the docs does not need the copy (the docs load BokehJS
from the installed bokeh themselves, and a live kernel sends it again).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from lob.viz._common import LOADER_KEY

__all__ = ["strip_loader"]


def strip_loader(path) -> int:
    """Remove the loader outputs from the notebook at ``path`` in place; return how many were removed."""
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    removed = 0
    for cell in nb.get("cells", []):
        outs = cell.get("outputs")
        if not outs:
            continue
        keep = [o for o in outs if not o.get("metadata", {}).get(LOADER_KEY)]
        removed += len(outs) - len(keep)
        cell["outputs"] = keep
    if removed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return removed


def main(argv=None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m lob.viz.strip_loader NOTEBOOK.ipynb ...", file=sys.stderr)
        return 2
    for p in paths:
        print(f"{p}: {strip_loader(p)} BokehJS loader output(s) removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

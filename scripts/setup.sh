#!/usr/bin/env bash
# Set up a fresh clone: a virtual environment with lob (the lobkit distribution, compiled) and every extra
# (JupyterLab included: `.venv/bin/jupyter lab notebooks/` opens the notebooks), the lob server extension
# registered with Jupyter, and Debian's chromium for the browser tests. Idempotent; needs Python 3.11+, gcc and the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# a .venv made before the distribution was renamed lob -> lobkit holds this repository as "lob": remove that
# one (only if it is this checkout) so that one distribution owns the package and the `lob` command
if .venv/bin/python -m pip show lob 2>/dev/null | grep -q "Editable project location: $(pwd)$"; then
    .venv/bin/python -m pip uninstall -q -y lob
fi
.venv/bin/python -m pip install -q -e ".[dev]"
# a wheel install puts jupyter-config/jupyter_server_config.d/lob.json under <prefix>/etc/jupyter; an editable
# one does not: copy it there, so that jupyter server mounts the API under /lob/ (lob.server.extension)
mkdir -p .venv/etc/jupyter/jupyter_server_config.d
cp jupyter-config/jupyter_server_config.d/lob.json .venv/etc/jupyter/jupyter_server_config.d/lob.json
# check what was promised: JupyterLab runs, with the lob server extension and the widget extensions enabled
# (listings captured first: grep -q closing the pipe early would fail the pipeline under pipefail)
server_ext=$(.venv/bin/jupyter server extension list 2>&1)
grep -q "lob.server.extension.*enabled" <<<"$server_ext" \
    || { echo "setup: the lob server extension is not enabled in jupyter server" >&2; exit 1; }
lab_ext=$(.venv/bin/jupyter labextension list 2>&1)
for ext in "@jupyter-widgets/jupyterlab-manager" "@bokeh/jupyter_bokeh"; do
    grep -q "$ext.*enabled" <<<"$lab_ext" || { echo "setup: the $ext lab extension is not enabled" >&2; exit 1; }
done
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    if command -v apt-get >/dev/null 2>&1; then
        ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null) \
            || echo "setup: could not install Debian's chromium; the browser tests will fail" >&2
    else
        echo "setup: no apt-get; install chromium at /usr/bin/chromium for the browser tests" >&2
    fi
fi
echo "setup: ok ($(.venv/bin/python -c 'import lob; print("lob", lob.__version__)'), JupyterLab $(.venv/bin/jupyter lab --version))"
echo "setup: open the notebooks with  .venv/bin/jupyter lab notebooks/"

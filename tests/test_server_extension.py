"""The jupyter-server extension mounts the same API under /lob/ (pytest-jupyter's jp_fetch)."""
from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"lob.server.extension": True}}}


async def test_extension_serves_the_api(jp_fetch, jp_serverapp):
    hub = jp_serverapp.web_app.settings["lob_hub"]
    for _ in range(5):
        hub.step_market()
    r = await jp_fetch("lob", "api", "book", "AAPL", params={"depth": "3"})
    assert r.code == 200
    book = json.loads(r.body)
    d = hub.exchange.book("AAPL").depth(3)
    assert book["bids"] == [list(x) for x in d["bids"]] and book["asks"] == [list(x) for x in d["asks"]]
    r = await jp_fetch("lob", "healthz")
    assert json.loads(r.body)["components"]["engine"]["status"] == "ok"
    r = await jp_fetch("lob", "api", "openapi.json")
    assert json.loads(r.body)["servers"][0]["url"].endswith("/lob")
    jp_serverapp.web_app.settings["lob_runner"].stop()


def test_extension_points():
    from lob.server.extension import _jupyter_server_extension_points

    assert _jupyter_server_extension_points() == [{"module": "lob.server.extension"}]


def test_shipped_jupyter_config_enables_the_extension():
    # the file the package installs into etc/jupyter/jupyter_server_config.d (data_files in the packaging)
    import importlib
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "jupyter-config" / "jupyter_server_config.d" / "lob.json"
    assert path.is_file(), f"{path} is missing"
    conf = json.loads(path.read_text(encoding="utf-8"))
    enabled = conf["ServerApp"]["jpserver_extensions"]
    assert enabled and all(v is True for v in enabled.values())
    for name in enabled:
        module = importlib.import_module(name)
        points = module._jupyter_server_extension_points()
        # jupyter-server loads each point's module and calls its _load_jupyter_server_extension
        for point in points:
            assert callable(importlib.import_module(point["module"])._load_jupyter_server_extension)

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


# --- authentication under Jupyter (issue #16) ------------------------------------------------------------
LOB = {"Authorization": "Bearer tok-alice-0001"}
NOBODY = {"Authorization": ""}          # jp_fetch adds Jupyter's token unless the header is given


def _lob_hub(jp_serverapp):
    hub = jp_serverapp.web_app.settings["lob_hub"]
    jp_serverapp.web_app.settings["lob_runner"].stop()
    hub.accounts.add("tok-alice-0001", "alice")
    for _ in range(3):
        hub.step_market()
    return hub


async def _code(jp_fetch, *parts, **kw):
    from tornado.httpclient import HTTPClientError

    try:
        r = await jp_fetch(*parts, **kw)
    except HTTPClientError as e:
        return e.code, json.loads(e.response.body) if e.response is not None and e.response.body else None
    return r.code, json.loads(r.body) if r.headers.get("Content-Type", "").startswith("application/json") else r.body


@pytest.mark.parametrize("path", [("lob", "api", "book", "AAPL"), ("lob", "metrics"), ("lob", "healthz"),
                                  ("lob", "api", "openapi.json"), ("lob", "api", "orders"), ("lob", "api", "nowhere"),
                                  ("api", "contents")])
async def test_everything_needs_jupyters_login_or_a_lob_token(jp_fetch, jp_serverapp, path):
    _lob_hub(jp_serverapp)
    code, body = await _code(jp_fetch, *path, headers=dict(NOBODY))
    assert code == 403, (path, code, body)
    # with Jupyter's token (jp_fetch's default) or a lob token it answers
    if path[-1] not in ("nowhere", "orders"):
        assert (await _code(jp_fetch, *path))[0] == 200
    if path[0] == "lob" and path[-1] != "nowhere":
        assert (await _code(jp_fetch, *path, headers=dict(LOB)))[0] == 200


async def test_an_api_client_with_a_lob_token_posts_without_xsrf(jp_fetch, jp_serverapp):
    hub = _lob_hub(jp_serverapp)
    code, r = await _code(jp_fetch, "lob", "api", "orders", method="POST", headers=dict(LOB),
                          body=json.dumps({"symbol": "AAPL", "side": "buy", "qty": 3, "price": 180.0}))
    assert code == 201 and r["status"] == "new", r
    assert r["order_id"] in hub._open["alice"]
    code, r = await _code(jp_fetch, "lob", "api", "orders", str(r["order_id"]), method="DELETE", headers=dict(LOB))
    assert code == 200 and r["status"] == "cancelled"
    # an unknown bearer token is not a lob token and not Jupyter's: refused
    code, _ = await _code(jp_fetch, "lob", "api", "orders", method="POST", headers={"Authorization": "Bearer nope-nope"},
                          body=json.dumps({"symbol": "AAPL", "side": "buy", "qty": 3, "price": 180.0}))
    assert code == 403


async def test_a_browser_session_keeps_xsrf(jp_fetch, jp_serverapp):
    _lob_hub(jp_serverapp)
    # a token-authenticated request sets Jupyter's login cookie: the browser's session from then on
    r = await jp_fetch("lob", "api", "symbols")
    cookies = [c.split(";")[0] for c in r.headers.get_list("Set-Cookie")]
    login = [c for c in cookies if c.startswith("username-")]
    assert login, cookies
    session = {"Authorization": "", "Cookie": "; ".join(login)}
    assert (await _code(jp_fetch, "lob", "api", "book", "AAPL", headers=dict(session)))[0] == 200
    body = json.dumps({"symbol": "AAPL", "side": "buy", "qty": 3, "price": 180.0})
    code, err = await _code(jp_fetch, "lob", "api", "orders", method="POST", headers=dict(session), body=body)
    assert code == 403 and "xsrf" in json.dumps(err).lower(), err
    # with the XSRF cookie and header the request passes Jupyter's checks (and then needs a lob account)
    xsrf = "2|00000000|6162636465666768|1700000000"      # tornado's v2 format: version|mask|token|time (hex)
    with_xsrf = dict(session, Cookie=session["Cookie"] + f"; _xsrf={xsrf}", **{"X-XSRFToken": xsrf})
    code, err = await _code(jp_fetch, "lob", "api", "orders", method="POST", headers=with_xsrf, body=body)
    assert code == 401 and err["reason"] == "unauthorized", err


async def test_the_stream_needs_jupyters_login_or_a_lob_token(jp_ws_fetch, jp_serverapp):
    from tornado.httpclient import HTTPClientError

    _lob_hub(jp_serverapp)
    with pytest.raises(HTTPClientError) as e:
        await jp_ws_fetch("lob", "ws", headers=dict(NOBODY))
    assert e.value.code == 403
    for headers in (None, dict(LOB)):
        ws = await jp_ws_fetch("lob", "ws", headers=headers)
        hello = json.loads(await ws.read_message())
        assert hello["type"] == "hello" and hello["account"] == (None if headers is None else "alice")
        ws.close()

"""Jupyter-server extension: the same API (REST + WebSocket) under ``/lob/`` on a running Jupyter server.

Enabled on install by the ``jupyter-config/jupyter_server_config.d/lob.json`` the package ships (into
``etc/jupyter/jupyter_server_config.d``), or by hand with
``jupyter server --ServerApp.jpserver_extensions="{'lob.server.extension': True}"``; notebooks then reach
``/lob/api/book/AAPL`` on the Jupyter origin. The market steps on Jupyter's IOLoop, exactly as under
``lob serve`` (no dashboard here: the notebook widgets of :mod:`lob.viz` play that part).

Authentication: every route (market data, ``/lob/healthz``, ``/lob/metrics``, the WebSocket included) needs
Jupyter's own authentication (its login cookie or a Jupyter token, through Jupyter's identity provider) or a
lob API token (``Authorization: Bearer <lob token>``). A request authenticated by a lob token is exempt from
Jupyter's XSRF check, as a Jupyter-token request is (it is a script, not a browser form); a browser session,
authenticated by its cookie, keeps the XSRF check on POST, PATCH and DELETE.
"""
from __future__ import annotations

from lob.server.handlers import routes
from lob.server.errors import ApiError

__all__ = ["_jupyter_server_extension_points", "_load_jupyter_server_extension"]

PREFIX = "/lob"


_WRAPPED: dict = {}


def jupyter_authenticated(cls):
    """``cls`` (an API or WebSocket handler of :mod:`lob.server`) with Jupyter's handler mixed in: its
    ``jupyter_login()`` runs Jupyter's authentication (identity provider, host and XSRF checks) and answers
    403 to a caller Jupyter does not know."""
    if cls not in _WRAPPED:
        import tornado.websocket
        from jupyter_server.base.handlers import JupyterHandler

        async def jupyter_login(self) -> None:
            await JupyterHandler.prepare(self, _redirect_to_login=False)
            # Jupyter enforces its login per method (@web.authenticated) unless allow_unauthenticated_access
            # is off: here every route needs it
            if self.current_user is None:
                raise ApiError(403, "this request needs Jupyter's login or a lob API token "
                               "(Authorization: Bearer <token>)", "unauthorized")

        def set_default_headers(self) -> None:
            # the API's headers (JSON, no-store), not Jupyter's page headers (CSP, ...); none for a WebSocket
            if not issubclass(cls, tornado.websocket.WebSocketHandler):
                cls.set_default_headers(self)

        _WRAPPED[cls] = type("Jupyter" + cls.__name__, (cls, JupyterHandler),
                             {"jupyter_login": jupyter_login, "prepare": cls.prepare,
                              "write_error": cls.write_error, "set_default_headers": set_default_headers,
                              "check_xsrf_cookie": cls.check_xsrf_cookie})
    return _WRAPPED[cls]


def _jupyter_server_extension_points():
    return [{"module": "lob.server.extension"}]


def _load_jupyter_server_extension(serverapp, hub=None, step_ms: float = 100) -> None:
    """Mount the API under ``<base_url>lob/`` and start the market runner on the server's loop."""
    from tornado.ioloop import IOLoop

    from lob.server import Runner
    from lob.server.hub import Hub
    from lob.server.market import default_market

    if hub is None:
        hub = Hub(default_market(0))
    base = serverapp.web_app.settings.get("base_url", "/").rstrip("/")
    serverapp.web_app.add_handlers(".*$", routes(hub, base + PREFIX, wrap=jupyter_authenticated, jupyter=True))
    hub.use_loop(IOLoop.current())
    runner = Runner(hub, step_ms=step_ms)
    runner.start()
    serverapp.web_app.settings["lob_hub"] = hub
    serverapp.web_app.settings["lob_runner"] = runner
    serverapp.log.info("lob: exchange API mounted at %s%s/api", base, PREFIX)

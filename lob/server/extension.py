"""Jupyter-server extension: the same API (REST + WebSocket) under ``/lob/`` on a running Jupyter server.

Enabled on install by the ``jupyter-config/jupyter_server_config.d/lob.json`` the package ships (into
``etc/jupyter/jupyter_server_config.d``), or by hand with
``jupyter server --ServerApp.jpserver_extensions="{'lob.server.extension': True}"``; notebooks then reach
``/lob/api/book/AAPL`` on the Jupyter origin. The market steps on Jupyter's IOLoop, exactly as under
``lob serve`` (no dashboard here: the notebook widgets of :mod:`lob.viz` play that part).
"""
from __future__ import annotations

from lob.server.handlers import routes

__all__ = ["_jupyter_server_extension_points", "_load_jupyter_server_extension"]

PREFIX = "/lob"


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
    serverapp.web_app.add_handlers(".*$", routes(hub, base + PREFIX))
    hub.use_loop(IOLoop.current())
    runner = Runner(hub, step_ms=step_ms)
    runner.start()
    serverapp.web_app.settings["lob_hub"] = hub
    serverapp.web_app.settings["lob_runner"] = runner
    serverapp.log.info("lob: exchange API mounted at %s%s/api", base, PREFIX)

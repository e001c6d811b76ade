"""The data folder of a durable server (``lob serve`` journals by default).

::

    DIR/journal/                the exchange's journal (lob.journal: every input and output, snapshots)
    DIR/client_order_ids.jsonl  client order ids of live orders (idempotent resubmission survives a restart)
    DIR/server.json             what runs here (market kind, seed, fsync policy, first start)
    DIR/lock                    held (flock) by the server using the folder

The default folder is the user's data directory (``platformdirs.user_data_dir("lob")``: on Linux
``$XDG_DATA_HOME/lob`` or ``~/.local/share/lob``), under ``server/``. A restart with the same command
recovers the exchange from the journal (books, pending stops, owners, sequence numbers) and the accounts'
open orders, positions and client order ids before the server takes traffic; the simulated agents start
again on the recovered books (their own old orders are cancelled first, as when an agent restarts).

Loss windows (``--fsync``), for orders whose acknowledgement a client received:

``always``  none, after a process crash or a power loss (each request is fsynced before it is answered).
``batch``   a process crash (SIGKILL) loses at most the requests of about the last ``batch_ms`` (5 ms) and
            fewer than ``batch_records`` (256) of them, plus up to ``sys.getswitchinterval()`` (5 ms) that the
            journal's thread may wait for the interpreter; a power loss adds the requests since the last
            completed fsync: about the last ``--fsync-ms`` (5 ms by default). Always the newest requests: the recovered exchange is a prefix of the acknowledged one.
``never``   what the OS had not written back (a process crash loses none that reached the OS, which is every
            request but fewer than ``batch_records`` of the last; a power loss may lose seconds).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from lob.errors import ConfigError
from lob.server.codec import dumps

__all__ = ["default_data_dir", "DataDir", "ClientIdLog", "journal_positions", "durable_hub", "FSYNC_HELP",
           "DEFAULT_FSYNC_MS"]

#: ``lob serve --fsync batch``: fsync the journal at every group commit (5 ms); ``--fsync-ms`` widens it
DEFAULT_FSYNC_MS = 5.0

FSYNC_HELP = ("always: every acknowledged order survives a crash or power loss (an fsync per request); "
              "batch (default): a process crash loses at most the orders acknowledged in about the last 5 ms "
              "(under 256 of them; plus up to 5 ms the journal thread may wait under load), a power loss also "
              "those since the last fsync (every --fsync-ms); never: the OS writes back when it chooses")


def default_data_dir() -> Path:
    """``$LOB_DATA`` if set, else the user's data directory for lob (``~/.local/share/lob`` on Linux) / server."""
    env = os.environ.get("LOB_DATA")
    if env:
        return Path(env)
    try:
        from platformdirs import user_data_dir

        base = Path(user_data_dir("lob", appauthor=False))
    except ImportError:     # platformdirs comes with jupyter-server; the XDG rule otherwise
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "lob"
    return base / "server"


class DataDir:
    """One server's data folder, locked for as long as the server runs (a second server on the same folder
    would interleave two journals).

    Parameters
    ----------
    path : path
    """

    def __init__(self, path):
        self.root = Path(path).expanduser()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"data folder {str(self.root)!r} cannot be created ({e})") from None
        self.journal = self.root / "journal"
        self.client_ids = self.root / "client_order_ids.jsonl"
        self.meta_file = self.root / "server.json"
        self._lock_fd = None

    @property
    def has_journal(self) -> bool:
        return (self.journal / "journal.lobj").exists()

    def lock(self) -> None:
        import fcntl

        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise ConfigError(f"data folder {str(self.root)!r} is in use by another lob serve (pid {other or '?'}); "
                              f"stop it or give another --data") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def meta(self) -> dict:
        try:
            return json.loads(self.meta_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}

    def write_meta(self, **fields) -> None:
        data = dict(self.meta(), **fields)
        tmp = self.meta_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.meta_file)


class ClientIdLog:
    """Client order ids, one JSON line each (``[account, client id, symbol, order id]``), written before the
    order reaches the exchange; on recovery the lines whose order is live are kept and the file is rewritten
    with those only.

    Parameters
    ----------
    path : path
    fsync : {"always", "batch", "never"}
        ``always``: each line is fsynced before the order is placed; otherwise each line reaches the OS at once
        (a process crash loses none) and :meth:`sync` (the server calls it periodically) fsyncs.
    """

    def __init__(self, path, fsync: str = "batch"):
        self.path = Path(path)
        self.fsync = fsync
        self._fd = None
        self._dirty = False
        self.lines = 0                  # lines in the file (compacted by the server when they far exceed the live ids)

    def rows(self) -> list[tuple]:
        """The lines as ``(account, client id, symbol, order id)``; a torn last line is skipped."""
        out = []
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return out
        for line in text.splitlines():
            try:
                a, c, s, o = json.loads(line)
            except (ValueError, TypeError):
                continue
            if isinstance(a, str) and isinstance(c, str) and isinstance(s, str) and isinstance(o, int):
                out.append((a, c, s, o))
        return out

    def rewrite(self, rows) -> None:
        """Replace the file by ``rows`` (written whole, fsynced, then renamed) and open it for appending."""
        self.close()
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            rows = [list(r) for r in rows]
            f.writelines(dumps(r) + "\n" for r in rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.lines = len(rows)

    def append(self, account: str, clid: str, symbol: str, order_id: int) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, (dumps([account, clid, symbol, order_id]) + "\n").encode())
        self.lines += 1
        if self.fsync == "always":
            os.fsync(self._fd)
        else:
            self._dirty = True

    def sync(self) -> None:
        if self._dirty and self._fd is not None and self.fsync != "never":
            self._dirty = False
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            if self._dirty and self.fsync != "never":
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            self._dirty = False


def journal_positions(path) -> dict[int, dict[int, list[int]]]:
    """Positions of every owner from all the fills of a journal: ``{owner id: {symbol index: [lots, cash]}}``,
    cash in tick-lots (the hub's ``positions``)."""
    from lob import FILL_DTYPE, EVENT_DTYPE, REPORT_DTYPE
    from lob.journal.format import RecordType, split_block
    from lob.journal.journal import _load_records

    records, _ = _load_records(path, repair_tail=False, outputs=True)
    parts = []
    for r in records:
        if r.type == RecordType.FILLS:
            parts.append(np.frombuffer(r.payload, dtype=FILL_DTYPE))
        elif r.type == RecordType.BLOCK:
            parts.append(split_block(r.payload, EVENT_DTYPE, REPORT_DTYPE, FILL_DTYPE)[3])
    out: dict[int, dict[int, list[int]]] = {}
    fills = np.concatenate(parts) if parts else np.zeros(0, FILL_DTYPE)
    if not len(fills):
        return out
    q = fills["qty_lots"].astype(np.int64)
    px = fills["price_ticks"].astype(np.int64)
    taker_buys = fills["aggressor"] == 0
    buyer = np.where(taker_buys, fills["taker_owner"], fills["maker_owner"]).astype(np.int64)
    seller = np.where(taker_buys, fills["maker_owner"], fills["taker_owner"]).astype(np.int64)
    sym = fills["symbol"].astype(np.int64)
    owners = np.concatenate([buyer, seller])
    syms = np.concatenate([sym, sym])
    sign = np.concatenate([np.ones(len(q), np.int64), -np.ones(len(q), np.int64)])
    qq = np.concatenate([q, q]) * sign
    cash = -np.concatenate([q * px, q * px]) * sign
    keys, inv = np.unique(np.stack([owners, syms]), axis=1, return_inverse=True)
    inv = inv.ravel()
    pos_sum = np.zeros(keys.shape[1], dtype=np.int64)
    np.add.at(pos_sum, inv, qq)
    cash_sum = np.zeros(keys.shape[1], dtype=object)
    np.add.at(cash_sum, inv, cash.astype(object))      # exact: cash can exceed 2**53
    for k in range(keys.shape[1]):
        out.setdefault(int(keys[0, k]), {})[int(keys[1, k])] = [int(pos_sum[k]), int(cash_sum[k])]
    return out


def durable_hub(data: DataDir, seed: int = 0, fsync: str = "batch", accounts=None, fsync_ms: float | None = None,
                **hub_kwargs):
    """The simulated market on a journaled exchange in ``data`` and its hub: recovered when the folder holds a
    journal (exchange, accounts' open orders, positions, client order ids; the agents start again on the
    recovered books), else new. Return ``(hub, recovered)``; nothing has been served yet.
    """
    import lob
    from lob.server.hub import Hub
    from lob.server.market import SimMarket
    from lob.sim import Simulator

    recovered = data.has_journal
    jkw = {} if fsync_ms is None else {"fsync_ms": fsync_ms}
    ex = (lob.Exchange.open(data.journal, fsync=fsync, **jkw) if recovered
          else lob.Exchange(journal=data.journal, fsync=fsync, **jkw))
    sim = Simulator.default(seed, clock="realtime", exchange=ex)
    if recovered:
        # the agents start afresh (as after a failure): their orders of the last run are withdrawn first
        owners = {ex.owner_id(a.owner) for a in sim.agents}
        for name in ex.symbols:
            a = ex.book(name).orders_array()
            for oid, owner in zip(a["order_id"].tolist(), a["owner"].tolist()):
                if owner in owners:
                    ex.cancel(name, oid, owner=owner)
    # every owner's position from every fill journaled so far (the warm-up's too), then kept by the hub
    ex.journal.commit()
    positions = journal_positions(data.journal)
    hub = Hub(SimMarket(sim), accounts, **hub_kwargs)
    hub.positions = positions
    if recovered:
        for name in hub.accounts.names:
            hub.adopt(name)
    log = ClientIdLog(data.client_ids, fsync)
    if recovered:
        hub.restore_client_ids(log.rows())
    log.rewrite(hub.client_id_rows())
    hub.client_log = log
    data.write_meta(market="sim", seed=seed, fsync=fsync, **({} if recovered else {"created": time.time()}),
                    last_start=time.time(), recovered_seq=ex.seq if recovered else None)
    return hub, recovered

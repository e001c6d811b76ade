"""Accounts of the server: API tokens (a JSON file or in-process), request-rate buckets and per-account limits.

A token file is ``{"tokens": {"<token>": {"account": "alice", "created": <unix s>}}}``. Its path is
``$LOB_TOKENS`` or ``~/.config/lob/tokens.json``. ``lob token create NAME`` adds a token, ``lob token revoke``
removes one (or all of an account's), ``lob token list`` shows them; a running server sees each change at the
next request (it re-reads the file when its modification time, size or inode changes), no restart needed.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

from lob.errors import ConfigError

__all__ = ["Accounts", "RateLimiter", "AccountLimits", "default_tokens_path", "create_token", "revoke_tokens",
           "list_tokens"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def default_tokens_path() -> Path:
    """``$LOB_TOKENS`` if set, else ``~/.config/lob/tokens.json``."""
    env = os.environ.get("LOB_TOKENS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lob" / "tokens.json"


def _read(path: Path) -> dict:
    if not path.exists():
        return {"tokens": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"token file {path} is not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), dict):
        raise ConfigError(f"token file {path} must hold an object with a 'tokens' object")
    return data


def create_token(name: str, path=None) -> str:
    """Create an API token for account ``name``, store it in the token file and return it.

    Parameters
    ----------
    name : str
        Account name (letters, digits, ``_ . -``; at most 64 characters).
    path : path, optional
        Token file (default :func:`default_tokens_path`); created with mode 0600.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "tokens.json")
    >>> tok = create_token("alice", p)
    >>> Accounts(path=p).account_for(tok)
    'alice'
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"account name must match {_NAME.pattern}, got {name!r}")
    path = Path(path) if path is not None else default_tokens_path()
    data = _read(path)
    token = "lob_" + secrets.token_urlsafe(24)
    data["tokens"][token] = {"account": name, "created": int(time.time())}
    _write(path, data)
    return token


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    # written whole then renamed: a crash never leaves a half-written token file (and a server reading it
    # sees the old file or the new one)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def revoke_tokens(token: str | None = None, account: str | None = None, path=None) -> list[str]:
    """Remove a token, or every token of ``account``, from the token file; return the accounts whose token was
    removed (a running server refuses the token from its next request on).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "tokens.json")
    >>> tok = create_token("alice", p)
    >>> revoke_tokens(tok, path=p), Accounts(path=p).account_for(tok) is None
    (['alice'], True)
    """
    if (token is None) == (account is None):
        raise ConfigError(f"give a token or an account to revoke, got token={token!r}, account={account!r}")
    path = Path(path) if path is not None else default_tokens_path()
    data = _read(path)
    tokens = data["tokens"]
    gone = [t for t, rec in tokens.items()
            if t == token or (account is not None and _account_of(rec) == account)]
    if not gone:
        what = f"token {token[:8]}..." if token is not None else f"account {account!r}"
        raise ConfigError(f"{what} has no token in {path}")
    removed = [_account_of(tokens.pop(t)) for t in gone]
    _write(path, data)
    return removed


def list_tokens(path=None) -> list[dict]:
    """The tokens of the token file: ``account``, ``created`` (unix s) and ``token`` shown by its first 8
    characters only."""
    path = Path(path) if path is not None else default_tokens_path()
    return [dict(account=_account_of(rec), created=rec.get("created") if isinstance(rec, dict) else None,
                 token=t[:8] + "...") for t, rec in _read(path)["tokens"].items()]


def _account_of(rec):
    return rec.get("account") if isinstance(rec, dict) else rec


class Accounts:
    """Token -> account name.

    Parameters
    ----------
    tokens : dict, optional
        ``{token: account}`` given in-process (tests, notebooks).
    path : path, optional
        A token file to read as well; ``None`` reads :func:`default_tokens_path` if it exists,
        ``False`` reads no file.
    """

    def __init__(self, tokens: dict | None = None, path=None):
        self._by_token: dict[str, str] = {}         # given in-process
        self._from_file: dict[str, str] = {}
        self.path = None if path is False else Path(path) if path is not None else default_tokens_path()
        self._stamp = None
        self.reload()
        for tok, acct in (tokens or {}).items():
            self.add(tok, acct)

    def reload(self, force: bool = True) -> bool:
        """Re-read the token file if it changed (modification time, size, inode) or ``force``; return whether
        it was read. A file that is unreadable or not valid JSON keeps the tokens read before (and raises
        ``ConfigError`` only the first time, when there are none)."""
        if self.path is None:
            return False
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp and not force:
            return False
        try:
            data = _read(self.path)
        except ConfigError:
            if self._stamp is None and force:
                raise
            return False                # a broken edit: keep serving the tokens known so far
        self._from_file = {tok: a for tok, rec in data["tokens"].items() if isinstance(a := _account_of(rec), str)}
        self._stamp = stamp
        return True

    def add(self, token: str, account: str) -> None:
        """Register a token for an account (in memory only)."""
        if not isinstance(token, str) or len(token) < 8:
            raise ConfigError(f"token must be a string of at least 8 characters, got {token!r}")
        if not isinstance(account, str) or not _NAME.match(account):
            raise ConfigError(f"account name must match {_NAME.pattern}, got {account!r}")
        self._by_token[token] = account

    def account_for(self, token: str | None) -> str | None:
        """The account of a token, or None (unknown token or no token); sees the token file's latest state."""
        if not token:
            return None
        if self.path is not None:
            self.reload(force=False)
        return self._by_token.get(token) or self._from_file.get(token)

    @property
    def names(self) -> list[str]:
        return sorted(set(self._by_token.values()) | set(self._from_file.values()))

    def __len__(self) -> int:
        return len(self._by_token.keys() | self._from_file.keys())


class RateLimiter:
    """Token buckets keyed by client (account or address): ``allow(key)`` spends one token.

    Parameters
    ----------
    rate : float
        Tokens added per second (sustained requests/s); ``0`` disables the limit.
    burst : int
        Bucket size (requests allowed at once).
    clock : callable
        Seconds (monotonic); injectable for tests.
    """

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        if self.rate <= 0:
            return True
        now = self.clock()
        level, last = self._buckets.get(key, (self.burst, now))
        level = min(self.burst, level + (now - last) * self.rate)
        if level < 1.0:
            self._buckets[key] = (level, now)
            return False
        self._buckets[key] = (level - 1.0, now)
        if len(self._buckets) > 100_000:        # bounded memory against many distinct addresses
            self._buckets.clear()
        return True

    def retry_after(self, key: str) -> float:
        level, _ = self._buckets.get(key, (self.burst, 0.0))
        return max(0.0, (1.0 - level) / self.rate) if self.rate > 0 else 0.0


class AccountLimits:
    """Per-account pre-trade limits checked by the server before an order reaches the exchange.

    This is the server's risk hook: when ``lob.risk`` is installed on the exchange (``exchange.risk``),
    its checks run inside the order path as well. Rejections are execution reports with a ``risk_*``
    reason, never exceptions.

    Parameters
    ----------
    max_qty : float
        Largest order quantity (``risk_max_qty``).
    max_notional : float
        Largest ``price * qty`` of a limit order (``risk_max_notional``).
    max_open_orders : int
        Open orders per account across symbols (``risk_open_orders``).
    """

    def __init__(self, max_qty: float = 100_000, max_notional: float = 10_000_000, max_open_orders: int = 1_000):
        self.max_qty = max_qty
        self.max_notional = max_notional
        self.max_open_orders = max_open_orders

    def check(self, qty: float, price: float | None, open_orders: int) -> str | None:
        """The ``risk_*`` reason that rejects this order, or None."""
        if qty > self.max_qty:
            return "risk_max_qty"
        if price is not None and price * qty > self.max_notional:
            return "risk_max_notional"
        if open_orders >= self.max_open_orders:
            return "risk_open_orders"
        return None

    def as_dict(self) -> dict:
        return dict(max_qty=self.max_qty, max_notional=self.max_notional, max_open_orders=self.max_open_orders)

    def scaled(self, factor: float) -> "AccountLimits":
        """These limits times ``factor`` (conservative mode); at least one open order stays allowed."""
        return AccountLimits(self.max_qty * factor, self.max_notional * factor,
                             max(1, int(self.max_open_orders * factor)))

"""Accounts of the server: API tokens (a JSON file or in-process), request-rate buckets and per-account limits.

A token file is ``{"tokens": {"<token>": {"account": "alice", "created": <unix s>}}}``. Its path is
``$LOB_TOKENS`` or ``~/.config/lob/tokens.json``. ``lob token create NAME`` appends a new token; the server
reads the file when it starts (plus any tokens given in-process).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

from lob.errors import ConfigError

__all__ = ["Accounts", "RateLimiter", "AccountLimits", "default_tokens_path", "create_token"]

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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    # written whole then renamed: a crash never leaves a half-written token file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)
    return token


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
        self._by_token: dict[str, str] = {}
        if path is not False:
            p = Path(path) if path is not None else default_tokens_path()
            for tok, rec in _read(p)["tokens"].items():
                acct = rec.get("account") if isinstance(rec, dict) else rec
                if isinstance(acct, str):
                    self._by_token[tok] = acct
        for tok, acct in (tokens or {}).items():
            self.add(tok, acct)

    def add(self, token: str, account: str) -> None:
        """Register a token for an account (in memory only)."""
        if not isinstance(token, str) or len(token) < 8:
            raise ConfigError(f"token must be a string of at least 8 characters, got {token!r}")
        if not isinstance(account, str) or not _NAME.match(account):
            raise ConfigError(f"account name must match {_NAME.pattern}, got {account!r}")
        self._by_token[token] = account

    def account_for(self, token: str | None) -> str | None:
        """The account of a token, or None (unknown token or no token)."""
        if not token:
            return None
        return self._by_token.get(token)

    @property
    def names(self) -> list[str]:
        return sorted(set(self._by_token.values()))

    def __len__(self) -> int:
        return len(self._by_token)


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

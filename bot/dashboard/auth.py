"""Who may see the dashboard: safe by default.

- On loopback (127.0.0.1, ::1, localhost) without DASHBOARD_TOKEN it is open: only this computer
  (or an SSH tunnel to it) reaches it.
- Anywhere else it refuses to start without DASHBOARD_TOKEN (at least 24 characters).
- With a token every page and API asks for it: `Authorization: Bearer <token>`, or the login form,
  which sets an HttpOnly, SameSite=Strict cookie holding a keyed hash of the token (never the token).
  Both are compared in constant time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac

from bot.errors import ConfigError

__all__ = ["LOOPBACK", "MIN_TOKEN_LENGTH", "COOKIE", "check_bind", "TokenCheck"]

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
MIN_TOKEN_LENGTH = 24
COOKIE = "dashboard_session"


def check_bind(host: str, token: str) -> None:
    """Raise ConfigError when the dashboard must not start with this address and token."""
    if host not in LOOPBACK and not token:
        raise ConfigError(f"DASHBOARD_HOST={host} is reachable from other machines: set DASHBOARD_TOKEN (a long "
                          "random string, e.g. `python -c \"import secrets; print(secrets.token_urlsafe(32))\"`) "
                          "and put the dashboard behind TLS (docs/dashboard.md), or bind 127.0.0.1 and use an "
                          "SSH tunnel")
    if token and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"DASHBOARD_TOKEN is too short ({len(token)} characters); use at least "
                          f"{MIN_TOKEN_LENGTH} random ones")


class TokenCheck:
    """Checks a bearer token or a session cookie against DASHBOARD_TOKEN; open when there is none."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._session = hmac.new(self._token, b"dashboard-session-v1", hashlib.sha256).hexdigest() if token else ""

    @property
    def required(self) -> bool:
        return bool(self._token)

    def session_value(self) -> str:
        """What the login cookie holds: a keyed hash of the token, not the token."""
        return self._session

    def token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token)

    def allows(self, authorization: str | None, cookie: str | None) -> bool:
        if not self.required:
            return True
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and self.token_ok(value.strip()):
                return True
        return bool(cookie) and hmac.compare_digest((cookie or "").encode(), self._session.encode())

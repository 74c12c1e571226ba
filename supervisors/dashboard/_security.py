"""Where the dashboard listens and who may do what: address parsing, tokens, roles, CSRF."""

from __future__ import annotations

import enum
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from typing import Any

from supervisors import Secret

__all__ = [
    "API_CLIENT_HEADER",
    "CSRF_COOKIE",
    "TOKEN_COOKIE",
    "Access",
    "Role",
    "is_loopback",
    "parse_address",
]

TOKEN_COOKIE = "supervisors_token"
CSRF_COOKIE = "supervisors_csrf"
API_CLIENT_HEADER = "x-supervisors-client"
"""A request carrying this header (any value) is an API client, not a page a browser submitted:
browsers do not send custom headers across sites without a CORS preflight, which is never granted."""


class Role(enum.Enum):
    """What a request may do: ``ADMIN`` reads and acts, ``READER`` only reads."""

    ADMIN = "admin"
    READER = "reader"


def parse_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:8000"``, ``"[::1]:8000"``, ``"localhost:0"`` → ``(host, port)``; ``ValueError`` otherwise."""
    if not isinstance(address, str) or ":" not in address:
        raise ValueError(f"dashboard address must be 'host:port', e.g. '127.0.0.1:8000' (got {address!r})")
    host, _, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError(f"dashboard address {address!r} has no host; write '127.0.0.1:{port_text}'")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"dashboard address {address!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"dashboard address {address!r}: port {port} is not in 0..65535")
    return host, port


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


PARAMETERS: Mapping[str, str] = {"token": "token=", "readonly_token": "readonly_token="}
"""How `TokenError` names the tokens by default: as the parameters of `dashboard`."""


class TokenError(ValueError):
    """The dashboard's tokens cannot be used as given (too short, equal, or missing on a public
    address). The message names each token through ``{token}`` / ``{readonly_token}`` in
    ``template``; ``str()`` names them as `dashboard`'s parameters, and `render` as a caller's
    own names (the command line's options)."""

    def __init__(self, template: str) -> None:
        self.template = template
        super().__init__(self.render(PARAMETERS))

    def render(self, names: Mapping[str, str]) -> str:
        """The message with the tokens named by ``names`` (keys ``token``, ``readonly_token``)."""
        return self.template.format_map(names)


def _reveal(token: str | Secret[str] | None, what: str) -> str | None:
    value: Any = token.reveal() if isinstance(token, Secret) else token
    if value is None:
        return None
    if not isinstance(value, str) or len(value) < 8:
        got = f"{len(value)} character(s)" if isinstance(value, str) else type(value).__name__
        raise TokenError(
            f"the dashboard's {{{what}}} must be a string of at least 8 characters (got {got}); make "
            "one with: python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    return value


class Access:
    """The dashboard's tokens and the role each grants.

    With no token at all, every request is ``ADMIN`` (allowed on a loopback address only). With
    tokens, a request must carry one (``Authorization: Bearer <token>``, or the cookie set by
    the login form): ``token`` grants ``ADMIN``, ``readonly_token`` grants ``READER``.
    """

    def __init__(self, token: str | Secret[str] | None, readonly_token: str | Secret[str] | None) -> None:
        self._admin = _reveal(token, "token")
        self._reader = _reveal(readonly_token, "readonly_token")
        if self._admin is not None and self._admin == self._reader:
            raise TokenError("the dashboard's {token} and {readonly_token} must differ")

    @property
    def open(self) -> bool:
        """True when no token is configured (everyone is admin)."""
        return self._admin is None and self._reader is None

    def role_of(self, presented: str | None) -> Role | None:
        """The role the token ``presented`` grants, or ``None`` (unauthenticated)."""
        if self.open:
            return Role.ADMIN
        if not presented:
            return None
        given = presented.encode()
        if self._admin is not None and hmac.compare_digest(given, self._admin.encode()):
            return Role.ADMIN
        if self._reader is not None and hmac.compare_digest(given, self._reader.encode()):
            return Role.READER
        return None


def new_csrf_token() -> str:
    """A fresh random token for the double-submit CSRF cookie."""
    return secrets.token_urlsafe(24)


def same_origin(headers: Any, host: str) -> str | None:
    """``None`` if the request's ``Sec-Fetch-Site`` and ``Origin`` allow a state change, else why not."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    if origin is not None and origin != "null":
        _, _, rest = origin.partition("://")
        if rest != host:
            return f"cross-origin request refused (Origin {origin} is not this dashboard, {host})"
    elif origin == "null":
        return "request from an opaque origin refused (Origin: null)"
    return None


def csrf_matches(cookie: str | None, submitted: str | None) -> bool:
    """Whether the submitted CSRF token equals the cookie's (constant-time)."""
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())

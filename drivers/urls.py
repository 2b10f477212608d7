"""URL helpers: a password never leaves this module unmasked in text meant for people."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MASK = "***"


def mask_url(url: str) -> str:
    """Return ``url`` with any password (or token-only userinfo) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if parts.password is None and not parts.username:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    # redis://token@host: a lone userinfo may itself be the secret.
    userinfo = f"{parts.username or ''}:{MASK}" if parts.password is not None else MASK
    return urlunsplit((parts.scheme, f"{userinfo}@{netloc}", parts.path, parts.query, parts.fragment))


def host_port(url: str, default_port: int) -> str:
    """``host:port`` of a URL, for error messages (no credentials)."""
    try:
        parts = urlsplit(url)
        port = parts.port or default_port
    except ValueError:
        return "(unparseable url)"
    return f"{parts.hostname or '127.0.0.1'}:{port}"

"""URL helpers: a password never leaves this module unmasked in text meant for people.

A password with an unencoded ``#``, ``?`` or ``/`` makes ``urlsplit`` end the host part early, so its
``password`` is only the start of the secret and the rest lands in the path, query or fragment. Here the
userinfo is everything between ``scheme://`` and the *last* ``@`` of the URL: masked whole when it holds
such a character, and such URLs are refused at boot (``unencoded_userinfo``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "***"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Characters that end the authority of a URL: inside a password they must be percent-encoded.
AUTHORITY_ENDS = "/?#"


def split_userinfo(url: str) -> tuple[str, str | None, str]:
    """``(scheme://, userinfo or None, the rest from the host on)``, without trusting ``urlsplit``."""
    match = _SCHEME.match(url)
    prefix = match.group(0) if match else ""
    rest = url[len(prefix) :]
    at = rest.rfind("@")
    if at < 0:
        return prefix, None, rest
    return prefix, rest[:at], rest[at + 1 :]


def unencoded_userinfo(url: str) -> bool:
    """Does the URL's username or password hold a ``/``, ``?`` or ``#`` that is not percent-encoded?"""
    _, userinfo, _ = split_userinfo(url)
    return userinfo is not None and any(ch in userinfo for ch in AUTHORITY_ENDS)


def mask_url(url: str) -> str:
    """Return ``url`` with any password (or token-only userinfo) replaced by ``***``."""
    prefix, userinfo, rest = split_userinfo(url)
    if userinfo is None:
        return url
    if any(ch in userinfo for ch in AUTHORITY_ENDS) or not prefix:
        return f"{prefix}{MASK}@{rest}"  # cannot tell the user from the password: hide both
    user, colon, _ = userinfo.partition(":")
    # redis://token@host: a lone userinfo may itself be the secret.
    return f"{prefix}{user}:{MASK}@{rest}" if colon else f"{prefix}{MASK}@{rest}"


def secrets_of(url: str) -> list[str]:
    """The strings of ``url`` that must never appear in a message: its whole userinfo and its password."""
    _, userinfo, _ = split_userinfo(url)
    if not userinfo:
        return []
    found = [userinfo]
    user, colon, password = userinfo.partition(":")
    if colon and password:
        found.append(password)
    elif not colon:
        found.append(user)
    return found


def host_port(url: str, default_port: int) -> str:
    """``host:port`` of a URL (a unix socket's path), for error messages (no credentials)."""
    prefix, _, rest = split_userinfo(url)
    if prefix.lower() == "unix://":
        return rest.split("?", 1)[0] or "(no socket path)"
    try:
        parts = urlsplit(f"{prefix or '//'}{rest}")
        port = parts.port or default_port
    except ValueError:
        return "(unparseable url)"
    return f"{parts.hostname or '127.0.0.1'}:{port}"


def has_host(url: str) -> bool:
    """Does a network URL name a host (``redis://`` alone does not)?"""
    prefix, _, rest = split_userinfo(url)
    try:
        return bool(urlsplit(f"{prefix or '//'}{rest}").hostname)
    except ValueError:
        return False

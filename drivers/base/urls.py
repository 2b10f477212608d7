"""URL helpers: a password never leaves this module unmasked in text meant for people.

A password with an unencoded ``#``, ``?`` or ``/`` makes ``urlsplit`` end the host part early, so its
``password`` is only the start of the secret and the rest lands in the path, query or fragment. Here the
userinfo is everything between ``scheme://`` and the *last* ``@`` of the URL: masked whole when it holds
such a character, and such URLs are refused at boot (``unencoded_userinfo``).

A connection may name several servers: a comma-separated list of whole URLs (``nats://h1:4222,nats://h2:4222``,
``amqp://u:p@h1/vh,amqp://u:p@h2/vh``), split only where a comma is followed by ``scheme://`` (so a comma inside
a password stays part of it); or one URL with several ``host:port`` pairs in its authority
(``redis+sentinel://:p@h1:26379,h2:26379/master``). Every helper here handles both, server by server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

MASK = "***"
SENTINEL_PORT = 26379  # a sentinel's port when its URL names none
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Characters that end the authority of a URL: inside a password they must be percent-encoded.
AUTHORITY_ENDS = "/?#"
_NEXT_URL = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def split_urls(url: str) -> list[str]:
    """The URLs of a comma-separated list (one URL gives a list of one)."""
    return [part.strip() for part in _NEXT_URL.split(url.strip())]


def _each(url: str, one: Callable[[str], str]) -> str:
    return ",".join(one(part) for part in split_urls(url))


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
    """Does the username or password of the URL (of any URL of a list) hold a ``/``, ``?`` or ``#`` that is not
    percent-encoded?"""
    for part in split_urls(url):
        _, userinfo, _ = split_userinfo(part)
        if userinfo is not None and any(ch in userinfo for ch in AUTHORITY_ENDS):
            return True
    return False


def mask_url(url: str) -> str:
    """Return ``url`` (each URL of a list) with any password (or token-only userinfo) replaced by ``***``."""
    return _each(url, _mask_one)


def _mask_one(url: str) -> str:
    prefix, userinfo, rest = split_userinfo(url)
    if userinfo is None:
        return url
    if any(ch in userinfo for ch in AUTHORITY_ENDS) or not prefix:
        return f"{prefix}{MASK}@{rest}"  # cannot tell the user from the password: hide both
    user, colon, _ = userinfo.partition(":")
    # redis://token@host: a lone userinfo may itself be the secret.
    return f"{prefix}{user}:{MASK}@{rest}" if colon else f"{prefix}{MASK}@{rest}"


def secrets_of(url: str) -> list[str]:
    """The strings of ``url`` (of every URL of a list) that must never appear in a message: each whole userinfo
    and each password."""
    found: list[str] = []
    for part in split_urls(url):
        _, userinfo, _ = split_userinfo(part)
        if not userinfo:
            continue
        found.append(userinfo)
        user, colon, password = userinfo.partition(":")
        if colon and password:
            found.append(password)
        elif not colon:
            found.append(user)
    return list(dict.fromkeys(found))


def credentials_of(url: str) -> tuple[str | None, str | None]:
    """``(user, password)`` of the URL (the first of a list that has any), percent-decoded; a lone userinfo
    (``redis://secret@host``, ``nats://token@host``) is the password, with no user."""
    for part in split_urls(url):
        _, userinfo, _ = split_userinfo(part)
        if userinfo:
            user, colon, password = userinfo.partition(":")
            return (unquote(user) or None, unquote(password)) if colon else (None, unquote(user))
    return None, None


def several_hosts(url: str) -> bool:
    """A scheme whose authority lists several ``host:port`` pairs (Redis Sentinel's)."""
    match = _SCHEME.match(url)
    return match is not None and match.group(1).lower().endswith("+sentinel")


def _authority_hosts(prefix: str, rest: str) -> list[str]:
    """One URL per ``host[:port]`` of the authority (several in ``redis+sentinel://h1:1,h2:2/...``)."""
    if not several_hosts(prefix):
        return [f"{prefix or '//'}{rest}"]
    hosts = _authority(rest)
    return [f"{prefix}{host}{rest[len(hosts) :]}" for host in hosts.split(",")]


def host_port(url: str, default_port: int) -> str:
    """``host:port`` of a URL (a unix socket's path), for error messages (no credentials); for several servers
    each of them, comma-separated."""
    servers: list[str] = []
    for part in split_urls(url):
        prefix, _, rest = split_userinfo(part)
        if prefix.lower() == "unix://":
            servers.append(rest.split("?", 1)[0] or "(no socket path)")
            continue
        default = SENTINEL_PORT if several_hosts(prefix) else default_port
        for one in _authority_hosts(prefix, rest):
            try:
                parts = urlsplit(one)
                port = parts.port or default
            except ValueError:
                servers.append("(unparseable url)")
                continue
            servers.append(f"{parts.hostname or '127.0.0.1'}:{port}")
    return ",".join(servers)


def has_host(url: str) -> bool:
    """Does a network URL (every URL of a list, every server of an authority) name a host (``redis://`` alone
    does not)?"""
    for part in split_urls(url):
        prefix, _, rest = split_userinfo(part)
        try:
            if not all(urlsplit(one).hostname for one in _authority_hosts(prefix, rest)):
                return False
        except ValueError:
            return False
    return True


def url_list_problem(url: str) -> str | None:
    """What makes a (list of) URL(s) unreadable, server by server: a bad port, an empty entry, several hosts in
    one URL where the scheme takes one; else None."""
    match = _SCHEME.match(url.strip())
    scheme = match.group(1).lower() if match else "nats"
    example = f"{scheme}://h1:{_EXAMPLE_PORTS.get(scheme, 4222)},{scheme}://h2:{_EXAMPLE_PORTS.get(scheme, 4222)}"
    if url.strip().endswith(","):
        return (
            f"the list ends with a comma (an empty entry): separate servers with commas, each a whole URL ({example})"
        )
    for part in split_urls(url):
        prefix, _, rest = split_userinfo(part)
        if prefix.lower() == "unix://":
            continue
        if not prefix:
            return f"each server of a comma-separated list must be a whole URL with its scheme ({example})"
        if not several_hosts(prefix) and "," in _authority(rest):
            return f"one URL names several hosts: write each server as a whole URL, comma-separated ({example})"
        for one in _authority_hosts(prefix, rest):
            try:
                urlsplit(one).port  # noqa: B018  (raises for a port that is not a number)
            except ValueError:
                return (
                    "a server's port is not a number, or an entry of the list is empty: separate servers with "
                    f"commas, each a whole URL ({example})"
                )
            if not urlsplit(one).hostname:
                return "a server of the URL names no host"
    return None


_EXAMPLE_PORTS = {"amqp": 5672, "amqps": 5671, "redis": 6379, "rediss": 6379, "tls": 4222, "ws": 80, "wss": 443}


def _authority(rest: str) -> str:
    """The host[:port] part of what follows the userinfo."""
    end = min((i for i in (rest.find(ch) for ch in AUTHORITY_ENDS) if i >= 0), default=len(rest))
    return rest[:end]

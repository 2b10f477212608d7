"""The nats-py client, except that a ``tls://`` URL means TLS or no connection at all.

nats-py upgrades a connection to TLS only when the server's INFO says ``tls_required``: given
``tls://`` and a server without TLS (or an attacker answering for it), it carries on in plaintext and
sends the URL's credentials in the clear. Here a ``tls://`` server must offer TLS (``tls_required`` or
``tls_available``): the upgrade is then forced, and otherwise the attempt fails before CONNECT, so
nothing (credentials included) is sent.

nats-py also hands a URL's user and password to the server as written, percent-encoding included, so a password
with ``@ : / ? # %`` could not be used at all (encoded, the server refused it; raw, the URL cannot be read). Here
each server's URL reads its user and password (or token) percent-decoded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult, unquote

from nats.aio.client import Client
from nats.errors import Error as NatsError


class TlsNotOfferedError(NatsError):
    """The server of a ``tls://`` URL does not offer TLS: refused before anything was sent."""

    def __str__(self) -> str:
        return (
            "the URL asks for TLS (tls://) but the server does not offer it: not connected, nothing sent "
            "(credentials included). Enable TLS on the NATS server, or use nats:// if plaintext is intended"
        )


class DecodedUri(ParseResult):
    """A server URL whose user and password read percent-decoded (nats-py sends ``uri.username`` as written)."""

    @property
    def username(self) -> str | None:
        value = super().username
        return None if value is None else unquote(value)

    @property
    def password(self) -> str | None:
        value = super().password
        return None if value is None else unquote(value)


class StrictTlsClient(Client):
    def _setup_server_pool(self, connect_url: list[str]) -> None:
        super()._setup_server_pool(connect_url)
        for server in self._server_pool:
            server.uri = DecodedUri(*server.uri)

    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False) -> None:
        server = self._current_server
        if initial_connection and server is not None and server.uri.scheme == "tls":
            if not (info.get("tls_required") or info.get("tls_available")):
                raise TlsNotOfferedError
            info["tls_required"] = True  # nats-py reads this (the same dict) to decide on the upgrade
        await super()._process_info(info, initial_connection)


async def connect(servers: str | list[str], **options: Any) -> Client:
    """``nats.connect`` with the strict client (``servers``: one URL, or a list: nats-py's server pool)."""
    client = StrictTlsClient()
    await client.connect(servers, **options)
    return client

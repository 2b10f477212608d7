"""Connecting to one of several RabbitMQ nodes: ``amqp://u:p@h1:5672/vh,amqp://u:p@h2:5672/vh``.

aio-pika's ``connect_robust`` takes one URL, and neither aio-pika nor aiormq knows a list of hosts. Two small
additions give client-side failover across a cluster's nodes, and everything else stays aio-pika's:

- the first connection goes to the first URL that answers (each tried once, in order, with aio-pika's own
  connect and timeout); if none does, the error names every node and why (``CredentialsRefused`` if one of
  them refused the user or password: another attempt cannot help);
- ``FailoverConnection`` is aio-pika's ``RobustConnection`` (same reconnect loop, same restored channels,
  queues and consumers) that moves to the next URL of the list before each reconnect attempt. aio-pika starts
  every attempt by clearing ``transport``, so that assignment is where it moves on: a lost node is left at
  once, and a list of dead nodes is gone round until one answers.

With one URL nothing changes: plain ``connect_robust``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import aio_pika
from aio_pika import RobustConnection
from aio_pika.abc import AbstractConnection, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aiormq.exceptions import AuthenticationError, ProbableAuthenticationError
from yarl import URL

from drivers.base import reach
from drivers.base.errors import BrokerAuthenticationError, BrokerUnreachableError
from drivers.base.reach import scrub
from drivers.base.spec import BrokerSpec
from drivers.base.urls import host_port, mask_url, split_urls
from drivers.rabbitmq import RABBITMQ

logger = logging.getLogger("queue_manager.drivers.rabbitmq")
AMQP_PORT = 5672


class NoNodeAnswered(ConnectionError):
    """None of the URLs of a connection answered (each one's reason is in the message, passwords masked later)."""


class CredentialsRefused(NoNodeAnswered):
    """No URL of the list could be used, and a node that answered refused the user or password."""


# What aiormq raises when RabbitMQ refuses the login (ACCESS_REFUSED) or its mechanism.
AUTHENTICATION_ERRORS: tuple[type[BaseException], ...] = (
    AuthenticationError,
    ProbableAuthenticationError,
    CredentialsRefused,
)


def refusal(spec: BrokerSpec, error: BaseException) -> BrokerAuthenticationError | None:
    """RabbitMQ refused the login (ACCESS_REFUSED), as the error to raise."""
    return reach.refused(spec, error, RABBITMQ) if isinstance(error, AUTHENTICATION_ERRORS) else None


def unreachable(spec: BrokerSpec, error: BaseException) -> BrokerUnreachableError:
    return refusal(spec, error) or reach.unreachable(spec, error, RABBITMQ)


def urls_of(url: str | None) -> list[str]:
    return split_urls(url or "amqp://guest:guest@127.0.0.1:5672/")


class FailoverConnection(RobustConnection):
    def __init__(self, url: URL, *args: Any, urls: Sequence[str], label: str = "", **kwargs: Any) -> None:
        self._urls = [URL(candidate) for candidate in urls]
        self._at = self._urls.index(URL(url)) if URL(url) in self._urls else 0
        self._label = label
        self._attempted = False
        super().__init__(url, *args, **kwargs)

    @property  # type: ignore[override]
    def transport(self) -> Any:
        return self.__dict__.get("_failover_transport")

    @transport.setter
    def transport(self, value: Any) -> None:
        """aio-pika clears ``transport`` when it starts a (re)connect attempt: every attempt after the first goes
        to the next URL. (It also clears it in ``__init__`` and ``close()``, which move nothing.)"""
        starting = value is None and "_failover_transport" in self.__dict__ and not self._close_in_progress
        if starting and self._attempted and not self._close_called:
            self._at = (self._at + 1) % len(self._urls)
            self.url = self._urls[self._at]
            logger.warning("%s: reconnecting through %s", self._label, mask_url(str(self.url)))
        elif starting:
            self._attempted = True
        self.__dict__["_failover_transport"] = value


async def connect_first(
    url: str | None, *, connect_timeout: float | None, label: str, robust: bool = True, **kwargs: Any
) -> AbstractRobustConnection | AbstractConnection:
    """A (robust) connection to the first URL of the list that answers; ``NoNodeAnswered`` if none does."""
    urls = urls_of(url)
    connect: Callable[..., Any] = aio_pika.connect_robust if robust else aio_pika.connect
    if len(urls) == 1:
        connection: AbstractConnection = await connect(urls[0], timeout=connect_timeout, **kwargs)
        return connection
    if robust:
        kwargs["connection_class"] = partial(FailoverConnection, urls=urls, label=label)
    reasons: list[str] = []
    refused = False
    for candidate in urls:
        try:
            connection = await connect(candidate, timeout=connect_timeout, **kwargs)
        except CONNECTION_EXCEPTIONS as error:
            refused = refused or isinstance(error, AUTHENTICATION_ERRORS)
            reason = scrub(f"{type(error).__name__}: {error}", url)
            reasons.append(f"{host_port(candidate, AMQP_PORT)}: {reason}")
            continue
        if candidate != urls[0]:
            logger.warning("%s: %s did not answer; connected through %s", label, reasons[-1], mask_url(candidate))
        return connection
    raise (CredentialsRefused if refused else NoNodeAnswered)(f"no node of the list answered ({'; '.join(reasons)})")

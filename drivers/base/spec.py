"""What a driver is given to build a broker: plain data, no framework types."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from taskiq import AsyncBroker

from drivers.base.urls import mask_url


@dataclass(frozen=True, repr=False)
class BrokerSpec:
    """One connection's settings as a driver sees them.

    ``url`` may hold a password: ``repr`` shows it masked, and so must every
    message a driver builds from it (use ``display_url``). ``settings_prefix`` is how the
    app names this connection's settings (``QUEUE_CONNECTIONS__NATS__``), so a driver's error can name the
    variable to fix (``setting("options", "replicas")``) without knowing the manager.
    """

    name: str
    driver: str
    url: str | None = None
    queue: str = "default"
    result_backend: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)
    settings_prefix: str = ""

    @property
    def display_url(self) -> str:
        return mask_url(self.url) if self.url else "(none)"

    def setting(self, *path: str) -> str:
        """The name of one of this connection's settings, as the app sets it: ``QUEUE_CONNECTIONS__NATS__OPTIONS__
        REPLICAS``, or ``connection 'nats' setting options.replicas`` for a spec built by hand."""
        if self.settings_prefix:
            return self.settings_prefix + "__".join(part.upper() for part in path)
        return f"connection '{self.name}' setting {'.'.join(path)}"

    def __repr__(self) -> str:
        return (
            f"BrokerSpec(name={self.name!r}, driver={self.driver!r}, url={self.display_url!r}, "
            f"queue={self.queue!r}, result_backend={self.result_backend!r}, options={dict(self.options)!r})"
        )


BrokerFactory = Callable[[BrokerSpec], AsyncBroker]

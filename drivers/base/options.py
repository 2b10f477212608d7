"""What every driver's options share: validated at boot without importing any broker library.

Each driver's options model (in its own package: ``drivers/redis/options.py``, ...) lists what
``ConnectionSettings.options`` may hold for it; unknown keys are an error so a typo never silently falls back
to a default.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def send_timeout() -> Any:
    """How long one dispatch may wait for the broker before it fails with BrokerUnreachableError."""
    return Field(
        5.0,
        gt=0,
        le=300,
        description="seconds a dispatch waits for the broker (a network partition, an outage) before it fails",
    )


def refuse(problem: str | None) -> None:
    """A field validator's way to report a name the broker would refuse (``names`` rules return the sentence)."""
    if problem is not None:
        raise ValueError(problem)


class DriverOptions(BaseModel):
    # Built on first use: an app builds one or two of these, not all five, at boot. No inf/nan: an endless
    # timeout is never what was meant.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False)

"""Where batches are kept (beside the failed jobs, configured the same way): ``QUEUE_BATCHES__DRIVER``, ``__URL``.

The URL is checked by its shape (as the failed-jobs URL is), so SQLAlchemy is imported only when a batch is
first stored.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from queue_manager.settings.failed import check_url

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$", re.ASCII)  # room for "_jobs"/"_claims" and index names


class BatchSettings(BaseModel):
    """``driver``: database (SQLAlchemy async; SQLite under storage/queue by default), redis or memory.

    ``url``: the database URL (None: ``sqlite+aiosqlite:///<base_path>/storage/queue/batches.sqlite``);
    ``connection``: the queue connection whose Redis keeps them for the redis driver (None: the default one).
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    driver: Literal["database", "redis", "memory"] = "database"
    url: SecretStr | None = None
    table: str = "job_batches"
    connection: str | None = None
    prefix: str = "queues:batches"

    @field_validator("url")
    @classmethod
    def _async_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_url(value.get_secret_value())
        return value

    @field_validator("table")
    @classmethod
    def _plain_table(cls, value: str) -> str:
        if not _TABLE.match(value):
            raise ValueError("must be 1 to 41 letters, digits or underscores, not starting with a digit")
        return value

    @field_validator("prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not value or len(value) > 200 or any(ch.isspace() for ch in value):
            raise ValueError("must be 1 to 200 characters without spaces")
        return value

    @property
    def url_value(self) -> str | None:
        return self.url.get_secret_value() if self.url else None

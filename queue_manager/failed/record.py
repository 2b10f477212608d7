"""One failed job: what ran, how it failed, and enough to send it again (Laravel's ``failed_jobs`` row)."""

from __future__ import annotations

import base64
import json
import math
import traceback as tb
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from taskiq import TaskiqMessage

from queue_manager import text

FIRST_LINE_CHARS = 500  # of an error's message read for its first line (a listing reads no more)
UNDECODABLE = "(undecodable)"  # task_name of a message that could not be decoded at all
_MAX_DEPTH = 100


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already (what SQLite and MySQL hand back)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def safe_text(value: object) -> str:
    """Text every store can keep: no NUL (PostgreSQL refuses it), no lone surrogates (not UTF-8)."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        text = f"<unprintable {type(value).__name__}>"
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _repr(value: object) -> str:
    try:
        return safe_text(repr(value))
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def json_safe(value: Any, _path: frozenset[int] = frozenset()) -> Any:
    """``value`` as plain JSON data; anything JSON cannot hold becomes its ``repr``. Never raises."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if id(value) in _path or len(_path) > _MAX_DEPTH:
        return _repr(value)
    inner = _path | {id(value)}
    if isinstance(value, dict):
        return {key if isinstance(key, str) else _repr(key): json_safe(item, inner) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item, inner) for item in value]
    return _repr(value)


def first_line(message: str) -> str:
    """The first line of an error's message (of its first ``FIRST_LINE_CHARS`` characters), printable."""
    return text.first_line(message[:FIRST_LINE_CHARS])


def error_summary(exception: str, message: str) -> str:
    """``ValueError: job 7 is broken``: the error's class and the first line of its message."""
    first = first_line(message)
    return f"{exception}: {first}" if first else exception


def _formatted(error: BaseException) -> str:
    try:
        return "".join(tb.format_exception(error))
    except Exception:  # a broken __str__ or traceback object must not lose the record
        return f"{type(error).__name__}: <traceback unavailable>"


@dataclass(frozen=True)
class FailedJob:
    """A job that failed for good. ``payload`` holds the raw message only when it could not be decoded."""

    id: str
    connection: str
    queue: str
    task_name: str
    task_id: str
    args: list[Any]
    kwargs: dict[str, Any]
    labels: dict[str, Any]
    exception: str
    message: str
    traceback: str
    attempts: int
    failed_at: datetime
    payload: bytes | None = None

    def __post_init__(self) -> None:
        # Whoever built it, a record is storable: JSON-able data, clean text, an aware UTC time.
        for name in ("id", "connection", "queue", "task_name", "task_id", "exception", "message", "traceback"):
            object.__setattr__(self, name, safe_text(getattr(self, name)))
        object.__setattr__(self, "args", json_safe(list(self.args)))
        object.__setattr__(self, "kwargs", json_safe(dict(self.kwargs)))
        object.__setattr__(self, "labels", json_safe(dict(self.labels)))
        object.__setattr__(self, "attempts", int(self.attempts))
        object.__setattr__(self, "failed_at", utc(self.failed_at))
        if self.payload is not None:
            object.__setattr__(self, "payload", bytes(self.payload))

    @classmethod
    def from_message(
        cls, message: TaskiqMessage, exception: BaseException, *, connection: str, queue: str, attempts: int
    ) -> FailedJob:
        return cls(
            id=str(uuid.uuid4()),
            connection=connection,
            queue=queue,
            task_name=message.task_name,
            task_id=message.task_id or "",
            args=message.args,
            kwargs=message.kwargs,
            labels=message.labels,
            exception=type(exception).__name__,
            message=safe_text(exception),
            traceback=_formatted(exception),
            attempts=attempts,
            failed_at=datetime.now(UTC),
        )

    @classmethod
    def undecodable(cls, payload: bytes, error: BaseException, *, connection: str, queue: str) -> FailedJob:
        """A message no worker could decode: only its bytes are known, so they are kept whole."""
        return cls(
            id=str(uuid.uuid4()),
            connection=connection,
            queue=queue,
            task_name=UNDECODABLE,
            task_id="",
            args=[],
            kwargs={},
            labels={},
            exception=type(error).__name__,
            message=safe_text(error),
            traceback=_formatted(error),
            attempts=0,
            failed_at=datetime.now(UTC),
            payload=bytes(payload),
        )

    def raw_payload(self) -> bytes | None:
        """The message's own bytes if it could not be decoded (send those again), else None."""
        return self.payload

    @property
    def summary(self) -> str:
        """``ValueError: job 7 is broken``: the error's first line, for one row of a table."""
        return error_summary(self.exception, self.message)

    @property
    def size(self) -> int:
        """Characters of the whole record as JSON: what reading it costs (shown in listings)."""
        return len(json.dumps(self.to_dict()))

    def to_summary_fields(self) -> dict[str, Any]:
        """The short fields a listing shows (``FailedJobSummary``), as plain JSON data."""
        return {
            "id": self.id,
            "connection": self.connection,
            "queue": self.queue,
            "task_name": self.task_name,
            "task_id": self.task_id,
            "exception": self.exception,
            "first_line": first_line(self.message),
            "attempts": self.attempts,
            "failed_at": self.failed_at.isoformat(),
            "size": self.size,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: ``failed_at`` as ISO 8601, ``payload`` as base64."""
        data = asdict(self)
        data["failed_at"] = self.failed_at.isoformat()
        data["payload"] = base64.b64encode(self.payload).decode("ascii") if self.payload is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailedJob:
        """The inverse of ``to_dict``; keys it does not know are ignored (records written by a newer version)."""
        values = {field.name: data[field.name] for field in fields(cls) if field.name in data}
        failed_at = values["failed_at"]
        values["failed_at"] = datetime.fromisoformat(failed_at) if isinstance(failed_at, str) else failed_at
        payload = values.get("payload")
        values["payload"] = base64.b64decode(payload) if isinstance(payload, str) else payload
        return cls(**values)

"""The handle a dispatch returns: TaskIQ's ``AsyncTaskiqTask``, except that a failed job's result is not parsed.

TaskIQ parses every result into the task's return annotation and warns when it cannot. A failed job's result
has no value (its error is the point), so a caller waiting on ``-> str`` got "Cannot parse return type into
<class 'str'>" on top of the failure; here only a successful result is parsed (and still warns if it does not
fit the annotation).
"""

from __future__ import annotations

import logging
import time
from typing import Any, TypeVar

from taskiq import AsyncTaskiqTask, TaskiqMessage, TaskiqResult
from taskiq.compat import parse_obj_as
from taskiq.kicker import AsyncKicker

from drivers.base.labels import QUEUED_AT

R = TypeVar("R")
logger = logging.getLogger("taskiq.task")  # TaskIQ's own, where its warning came from


class JobHandle(AsyncTaskiqTask[R]):
    async def get_result(self, with_logs: bool = False) -> TaskiqResult[R]:
        return_type = self.return_type
        if return_type is None:
            return await super().get_result(with_logs=with_logs)
        self.return_type = None
        try:
            result = await super().get_result(with_logs=with_logs)
        finally:
            self.return_type = return_type
        if not result.is_err:
            try:
                result.return_value = parse_obj_as(return_type, result.return_value)
            except ValueError:
                logger.warning("Cannot parse return type into %s", return_type)
        return result


class QueueKicker(AsyncKicker[Any, Any]):
    """TaskIQ's kicker (every hook, every send), returning a ``JobHandle``."""

    def _prepare_message(self, *args: Any, **kwargs: Any) -> TaskiqMessage:
        """Every send is stamped with its time (``queued_at``): insight's wait time runs from it to the start."""
        message = super()._prepare_message(*args, **kwargs)
        message.labels[QUEUED_AT] = round(time.time(), 3)
        return message

    async def kiq(self, *args: Any, **kwargs: Any) -> JobHandle[Any]:
        sent = await super().kiq(*args, **kwargs)
        return JobHandle(sent.task_id, sent.result_backend, sent.return_type)

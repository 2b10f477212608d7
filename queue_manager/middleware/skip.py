"""``Skip.when(...)`` / ``Skip.unless(...)``: delete the job without running it (Laravel's Skip middleware)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from queue_manager.middleware.state import running
from queue_manager.running.pipeline import Next

Condition = bool | Callable[..., Any]


class Skip:
    """Job middleware: the job is deleted (done, no result, no attempt) when the condition says so."""

    def __init__(self, condition: Condition, skip_when: bool = True) -> None:
        if not isinstance(condition, bool) and not callable(condition):
            raise TypeError(f"Skip takes a bool or a function (of the job, or of nothing), got {condition!r}")
        self.condition = condition
        self.skip_when = skip_when

    @classmethod
    def when(cls, condition: Condition) -> Skip:
        """Skip the job if ``condition`` (a bool, or a function of the job or of nothing, sync or async) is true."""
        return cls(condition, True)

    @classmethod
    def unless(cls, condition: Condition) -> Skip:
        return cls(condition, False)

    async def handle(self, job: Any, next: Next) -> Any:
        if bool(await self._holds(job)) == self.skip_when:
            running(job).delete()
            return None
        return await next(job)

    async def _holds(self, job: Any) -> Any:
        if isinstance(self.condition, bool):
            return self.condition
        try:
            takes_job = bool(inspect.signature(self.condition).parameters)
        except (TypeError, ValueError):
            takes_job = True
        value = self.condition(job) if takes_job else self.condition()
        return await value if inspect.isawaitable(value) else value

    def __repr__(self) -> str:
        return f"Skip.{'when' if self.skip_when else 'unless'}({self.condition!r})"

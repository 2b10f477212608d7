"""Sending each due schedule once, however many ``queue:schedule`` processes run.

TaskIQ's scheduler sends through one broker and takes no lock, so two schedulers send every tick twice. As
Laravel's ``onOneServer`` keeps a cache lock per tick, a scheduler here sends a tick only after it claimed it on
the server of the connection the schedule goes out on (``ControlState.claim``); several schedulers can then run
for availability. A tick is the minute of a cron schedule, the time of a one-off, and for an interval schedule
its interval-long slot of the clock counted from the epoch: TaskIQ counts intervals from when each process
started, which no two schedulers share. A connection that keeps no shared state (failover, a custom broker
without a control state) gets no lock: every scheduler sends its schedules.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from taskiq import AsyncBroker, ScheduleSource, TaskiqScheduler
from taskiq.cli.scheduler.run import SchedulerLoop, to_tz_aware
from taskiq.kicker import AsyncKicker
from taskiq.scheduler.scheduled_task import ScheduledTask
from taskiq.utils import maybe_awaitable

from drivers.base.control import ControlState, control_of

if TYPE_CHECKING:
    from queue_manager.connection import Connection
    from queue_manager.manager import QueueManager
    from queue_manager.scheduler.entries import AppSchedules

logger = logging.getLogger("queue_manager.schedule")

CLOCK_MARGIN = 60  # seconds a tick's claim outlives the tick: the schedulers' clocks may differ this much
LONGEST_HELD = 3600  # a longer tick (a daily interval) keeps its claim this long, plus the margin
TICK_LABEL = "scheduled_for"  # on each job a schedule sends: its tick (ISO 8601, UTC)


def _seconds(interval: int | timedelta) -> int:
    return int(interval.total_seconds()) if isinstance(interval, timedelta) else interval


def tick_of(task: ScheduledTask, now: datetime) -> datetime:
    """The tick a due schedule is sent for: the same in every scheduler whose clock agrees within a minute."""
    if task.cron is not None:
        return now.replace(second=0, microsecond=0)
    if task.interval is not None:
        seconds = _seconds(task.interval)
        return datetime.fromtimestamp(now.timestamp() // seconds * seconds, tz=UTC)
    return to_tz_aware(task.time or now)


def held_for(task: ScheduledTask) -> int:
    """Seconds a tick's claim is kept: its length (so a restarted scheduler does not send it again) and a margin."""
    length = 60 if task.cron is not None else _seconds(task.interval) if task.interval is not None else LONGEST_HELD
    return min(length, LONGEST_HELD) + CLOCK_MARGIN


def claims_of(broker: AsyncBroker) -> ControlState | None:
    """The broker's control state if it can claim a tick, else None (its schedules are sent unlocked)."""
    control = control_of(broker)
    return control if control is not None and type(control).claim is not ControlState.claim else None


class ClockLoop(SchedulerLoop):
    """TaskIQ's scheduler loop, with an interval schedule due once in each slot of the clock (``tick_of``)."""

    def _is_schedule_ready_to_send(self, task: ScheduledTask, now: datetime) -> bool:
        if task.interval is None or task.cron is not None:
            return super()._is_schedule_ready_to_send(task, now)
        tick = tick_of(task, now)
        if self.interval_tasks_last_run.get(task.schedule_id) == tick:
            return False
        self.interval_tasks_last_run[task.schedule_id] = tick
        return True


class AppScheduler(TaskiqScheduler):
    """Sends each due schedule through its own connection (TaskIQ's scheduler has one broker), once per tick."""

    def __init__(self, manager: QueueManager, source: AppSchedules) -> None:
        super().__init__(manager.connection().broker, [source])
        self.manager = manager
        self.source = source

    def unlocked(self) -> list[str]:
        """The connections whose schedules every scheduler sends (no shared state to claim a tick on)."""
        names = set(self.source.connection_of.values())
        return sorted(name for name in names if claims_of(self.manager.connection(name).broker) is None)

    async def startup(self) -> None:
        names = sorted(set(self.source.connection_of.values()))
        for name in names:
            await self.manager.connection(name).startup()
        locked = ", ".join(f"'{name}'" for name in names if name not in self.unlocked())
        logger.info(
            f"Scheduler started: each tick is claimed on its connection's server ({locked}) before it is sent"
            if locked
            else "Scheduler started: no connection can lock a tick, so run one scheduler"
        )

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        connection = self.manager.connection(self.source.connection_of[task.schedule_id])
        tick = tick_of(task, datetime.now(UTC))
        try:
            if await self._claimed(connection, task, tick):
                handle = await self._send(connection, task, tick)
                logger.info("Sent %s (schedule %s, %s) on connection '%s': job %s", task.task_name,
                            task.schedule_id, tick.isoformat(), connection.name, handle.task_id)  # fmt: skip
            else:
                logger.debug("Schedule %s, %s: another scheduler sent it", task.schedule_id, tick.isoformat())
        except Exception as error:  # the server is away: this tick is lost, the next one is tried as usual
            logger.error("Schedule %s, %s was not sent on connection '%s': %s", task.schedule_id, tick.isoformat(),
                         connection.name, error)  # fmt: skip
            return
        await maybe_awaitable(source.post_send(task))

    async def _claimed(self, connection: Connection, task: ScheduledTask, tick: datetime) -> bool:
        control = claims_of(connection.broker)
        if control is None:
            return True
        return await control.claim(f"schedule:{task.schedule_id}:{int(tick.timestamp())}", held_for(task))

    async def _send(self, connection: Connection, task: ScheduledTask, tick: datetime) -> Any:
        kicker: AsyncKicker[Any, Any] = AsyncKicker(task.task_name, connection.broker, task.labels)
        kicker = kicker.with_labels(schedule_id=task.schedule_id, **{TICK_LABEL: tick.isoformat()})
        if task.task_id:
            kicker = kicker.with_task_id(task.task_id)
        return await kicker.kiq(*task.args, **task.kwargs)

    async def shutdown(self) -> None:
        await self.manager.shutdown()

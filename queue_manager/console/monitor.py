"""``python artisan queue:monitor redis:default,redis:deployments --max=100``: Laravel's queue monitor, with
Horizon's long-wait alerts.

Each queue's size, estimated wait and status. A queue holding ``--max`` jobs or more is an ALERT: a WARNING in
the log and a ``QueueBusy`` event through the app's dispatcher, as Laravel's. A queue whose wait is over its
``QUEUE_WAITS`` threshold is a LONG WAIT: ``LongWaitDetected`` and a WARNING the first time it crosses, not at
every run, and again only after it went back under (``queue_manager.alerts``). Exits 1 while any queue is in
alert, over its wait, or cannot be reached, so cron or CI can act on it. Run it every minute.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cleo.helpers import argument, option

from drivers import BrokerUnreachableError, QueueConfigurationError
from drivers.base.control import control_of
from queue_manager.alerts.crossings import Crossings, InProcess
from queue_manager.alerts.waits import RATE_MINUTES, estimate, finish_rate, named_queues, threshold
from queue_manager.console.ops import TASKS_OPTION, OperatingCommand
from queue_manager.events import LongWaitDetected, QueueBusy

if TYPE_CHECKING:
    from queue_manager.connection import Connection
    from queue_manager.manager import QueueManager

logger = logging.getLogger("queue_manager.monitor")


@dataclass
class Reading:
    connection: str
    queue: str
    size: int | None = None
    wait: float | None = None
    limit: float | None = None  # its QUEUE_WAITS threshold
    busy: bool = False
    long_wait: bool = False
    error: BrokerUnreachableError | None = None

    @property
    def alert(self) -> bool:
        return self.busy or self.long_wait or self.error is not None

    def status(self) -> str:
        if self.error is not None:
            return "<error>UNREACHABLE</error>"
        found = [name for name, on in (("ALERT", self.busy), ("LONG WAIT", self.long_wait)) if on]
        return f"<error>{', '.join(found)}</error>" if found else "<info>OK</info>"

    def wait_cell(self) -> str:
        text = "-" if self.wait is None else f"{self.wait:.0f}s"
        return text if self.limit is None else f"{text} / {self.limit:g}s"


class QueueMonitorCommand(OperatingCommand):
    name = "queue:monitor"
    description = (
        "Each queue's size, wait and status; a queue at --max fires QueueBusy, one over its QUEUE_WAITS fires "
        "LongWaitDetected; exits 1 while one is in alert or cannot be reached."
    )
    arguments = [
        argument(
            "queues",
            "connection:queue,... to watch (default: the default connection's, and those QUEUE_WAITS names)",
            optional=True,
            multiple=True,
        )
    ]
    options = [option("max", None, "The most jobs a queue may hold (1000)", flag=False, default="1000"), TASKS_OPTION]

    def handle(self) -> int:
        try:
            limit = int(self.option("max"))
            if limit < 1:
                raise ValueError
        except (TypeError, ValueError):
            return self.refuse(
                QueueConfigurationError(f"--max must be a whole number >= 1, got {self.option('max')!r}.")
            )
        try:
            targets = self.targets(self.argument("queues"))
            if not [value for value in self.argument("queues") or [] if value]:
                targets += [t for t in self._waited(self.manager) if t not in targets]
            readings = self.with_manager(lambda manager: _measure(manager, targets, limit))
        except QueueConfigurationError as error:
            return self.refuse(error)
        table = self.table()
        table.set_headers(["Queue", "Size", "Wait", "Status"])
        for reading in readings:
            size = "-" if reading.size is None else str(reading.size)
            table.add_row([f"{reading.connection}:{reading.queue}", size, reading.wait_cell(), reading.status()])
        table.render()
        for reading in readings:
            if reading.error is not None:
                self.line_error(f"{reading.connection}:{reading.queue}: {reading.error}", style="error")
        return 1 if any(reading.alert for reading in readings) else 0

    @staticmethod
    def _waited(manager: QueueManager) -> list[tuple[str, str]]:
        own = {name: manager.connection(name).queue for name in manager.settings.connections}
        return named_queues(manager.settings.waits, own)


async def _measure(manager: QueueManager, targets: list[tuple[str, str]], limit: int) -> list[Reading]:
    """Each queue's reading; one server that is down hides none of the others."""
    readings: list[Reading] = []
    states: dict[str, Crossings] = {}
    for name, queue in targets:
        reading = Reading(name, queue)
        readings.append(reading)
        connection = manager.connection(name)
        try:
            reading.size = await connection.size(queue)
        except BrokerUnreachableError as error:
            reading.error = error
            logger.warning("Queue %s:%s cannot be measured (queue:monitor): %s", name, queue, error)
            continue
        if reading.size >= limit:
            reading.busy = True
            logger.warning("Queue %s:%s holds %d jobs, --max is %d (queue:monitor)", name, queue, reading.size, limit)
            if manager.events.listening(QueueBusy):
                await manager.events.fire(QueueBusy(name, queue, reading.size, limit))
        reading.limit = threshold(manager.settings.waits, name, queue, connection.queue)
        if name not in states:
            control = control_of(connection.broker)
            states[name] = Crossings(control if control is not None else InProcess())
        try:
            await _wait(manager, connection, reading, states[name])
        except BrokerUnreachableError as error:
            reading.error = error
            logger.warning("Queue %s:%s cannot be measured (queue:monitor): %s", name, queue, error)
    return readings


async def _wait(manager: QueueManager, connection: Connection, reading: Reading, crossings: Crossings) -> None:
    """The queue's estimated wait and, when it has a threshold, whether it crossed it."""
    per_minute = await connection.throughput(reading.queue, minutes=RATE_MINUTES)
    size = reading.size or 0
    if per_minute is not None:
        rate = finish_rate(per_minute, time.time() % 60)
        reading.wait = estimate(size, rate)
        if reading.limit is not None:
            stalled = await crossings.stalled_for(reading.queue, size > 0 and rate <= 0)
            reading.wait = stalled if reading.wait is None else reading.wait
    if reading.limit is None:
        return
    change = await crossings.observe(reading.queue, reading.wait, reading.limit)
    reading.long_wait = change in ("crossed", "still-over")
    where = f"{reading.connection}:{reading.queue}"
    if change == "crossed":
        wait = reading.wait or 0.0
        logger.warning(
            "Queue %s waits about %.0f s, over its %g s (QUEUE_WAITS; queue:monitor)", where, wait, reading.limit
        )
        if manager.events.listening(LongWaitDetected):
            await manager.events.fire(LongWaitDetected(reading.connection, reading.queue, wait, reading.limit))
    elif change == "back-under":
        logger.info("Queue %s waits under its %g s again (queue:monitor)", where, reading.limit)

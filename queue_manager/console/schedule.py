"""``python artisan queue:schedule``: TaskIQ's scheduler loop over every connection's schedules."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
from typing import Any

from cleo.helpers import option
from fastapi_startkit.console import Command

from drivers import QueueConfigurationError
from queue_manager.console.base import DEFAULT_TASKS, task_modules
from queue_manager.worker.output import configure_worker_logging


class QueueScheduleCommand(Command):
    """Runs TaskIQ's scheduler loop over every connection's schedules until stopped (SIGTERM/SIGINT); several can
    run at once (each tick is claimed on its connection's server)."""

    name = "queue:schedule"
    description = "Send scheduled tasks (@task(schedule=[...])) when they are due, each on its connection."
    options = [option("tasks", None, f"Modules holding your tasks (default {DEFAULT_TASKS})", flag=False)]

    def handle(self) -> int:
        from queue_manager.scheduler import AppScheduler, AppSchedules, ClockLoop

        manager = self.container.make("queue.manager")
        configure_worker_logging(self.container, "[%(asctime)s][%(name)s][%(levelname)-7s] %(message)s")
        try:
            for module in task_modules(self.option("tasks")):
                importlib.import_module(module)
            source = AppSchedules(manager)
            source.collect()
        except QueueConfigurationError as error:
            self.line_error(str(error), style="error")
            return 2
        if not source.schedules:
            self.line_error(
                "No scheduled tasks: declare @task(schedule=[{'cron': '*/5 * * * *'}]) in the modules named by "
                "--tasks (default app.tasks).",
                style="error",
            )
            return 2
        for schedule_id, scheduled in source.schedules.items():
            when = scheduled.cron or (f"every {scheduled.interval}s" if scheduled.interval else scheduled.time)
            self.line(f"<info>Scheduled</info> {scheduled.task_name} ({when}) on '{source.connection_of[schedule_id]}'")
        scheduler = AppScheduler(manager, source)
        for name in scheduler.unlocked():
            self.line(
                f"<comment>Connection '{name}' keeps no shared state to lock a tick on: every queue:schedule sends "
                "its schedules, so run one.</comment>"
            )
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._run(scheduler, ClockLoop))
        return 0

    async def _run(self, scheduler: Any, loop_type: Any) -> None:
        import signal

        from taskiq.cli.scheduler.run import _startup_scheduler

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await _startup_scheduler(scheduler)
        running = asyncio.ensure_future(loop_type(scheduler).run())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            running.cancel()
            stopping.cancel()
            await scheduler.shutdown()

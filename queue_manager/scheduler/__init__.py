"""``python artisan queue:schedule``: TaskIQ's scheduler for every connection of the app.

``entries`` reads and checks the schedules declared on the app's tasks (``cron`` checks cron expressions the way
TaskIQ's matcher reads them); ``ticks`` sends each due one on its connection, once per tick however many
schedulers run. The loop that decides when a schedule is due is TaskIQ's own (``SchedulerLoop``), with interval
schedules on the clock's slots.
"""

from queue_manager.scheduler.cron import cron_problem
from queue_manager.scheduler.entries import AppSchedules
from queue_manager.scheduler.ticks import AppScheduler, ClockLoop

__all__ = ["AppScheduler", "AppSchedules", "ClockLoop", "cron_problem"]

"""``python artisan queue:supervise [CONNECTION] --queue=a,b --min-processes=1 --max-processes=10``: Horizon's
supervisor. It runs ``queue:work`` children (through this same artisan script, so they load the app as you
would) and balances them between the queues by the jobs waiting; see ``queue_manager.supervisor``."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from cleo.helpers import argument, option

from drivers import QueueConfigurationError
from queue_manager.console.base import ManagerCommand, task_modules
from queue_manager.console.work import positive_int, positive_seconds
from queue_manager.supervisor.balance import Limits, check_strategy, pools_for
from queue_manager.supervisor.pool import spawner
from queue_manager.supervisor.runtimes import Runtimes
from queue_manager.supervisor.supervisor import Options, Supervisor
from queue_manager.worker.entry import check_has_worker, parse_queues

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager

DEFAULT_MAX = 10
# queue:work's flags a supervisor hands to each child unchanged: (flag, check)
PASSED_ON: tuple[tuple[str, str], ...] = (
    ("tasks", "modules"),
    ("max-async-tasks", "int"),
    ("shutdown-timeout", "int"),
    ("max-jobs", "int"),
    ("max-time", "seconds"),
    ("memory", "seconds"),
    ("tries", "int"),
    ("backoff", "backoff"),
    ("timeout", "seconds"),
    ("sleep", "seconds"),
    ("format", "format"),
)


def artisan_script() -> str:
    """The script this command was started with (``artisan``): the children start through it too."""
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not os.path.isfile(script):
        raise QueueConfigurationError(
            f"queue:supervise starts its workers with the artisan script it was run by, but {sys.argv[0]!r} is not "
            "a file. Run it as: python artisan queue:supervise"
        )
    return script


class QueueSuperviseCommand(ManagerCommand):
    name = "queue:supervise"
    description = (
        "Run and balance queue:work processes for a connection's queues (Horizon's supervisor); "
        "SIGTERM lets every job finish, then exits 0."
    )
    refused_code = 2
    arguments = [argument("connection", "The connection to work (default: QUEUE_DRIVER)", optional=True)]
    options = [
        option("queue", None, "Queues to work: emails,default (default: the connection's)", flag=False),
        option("min-processes", None, "Worker processes each queue keeps, however idle", flag=False, default="1"),
        option("max-processes", None, f"Worker processes in all (default: {DEFAULT_MAX})", flag=False),
        option(
            "balance",
            None,
            "auto (by jobs waiting), simple (an even split) or off (one pool)",
            flag=False,
            default="auto",
        ),
        option("balance-cooldown", None, "Seconds between two balances", flag=False, default="3"),
        option("max-shift", None, "Processes added or removed per queue at each balance", flag=False, default="1"),
        option("tasks", None, "Modules holding your tasks (default: QUEUE_TASKS)", flag=False),
        option("max-async-tasks", None, "Jobs one worker process runs at once", flag=False),
        option("shutdown-timeout", None, "Seconds a stopping worker waits for its running jobs", flag=False),
        option("max-jobs", None, "A worker stops after this many jobs (and is started again)", flag=False),
        option("max-time", None, "A worker stops after this many seconds (and is started again)", flag=False),
        option("memory", None, "A worker over this many MB stops (and is started again)", flag=False),
        option("tries", None, "Attempts for jobs whose task sets no retries", flag=False),
        option("backoff", None, "Seconds before each retry of such jobs: 5 or 1,5,30", flag=False),
        option("timeout", None, "Seconds an async job whose task sets none may run", flag=False),
        option("sleep", None, "Seconds an idle worker waits for jobs before looking again", flag=False),
        option("format", None, "Job lines: text or json", flag=False),
    ]

    def handle(self) -> int:
        try:
            options, command = self.plan()
        except QueueConfigurationError as error:
            return self.refuse(error)

        def say(text: str) -> None:
            self.line(f"<comment>[supervisor]</comment> {text}")
            sys.stdout.flush()

        def supervisor(manager: QueueManager) -> Supervisor:
            connection = manager.connection(options.connection)
            return Supervisor(options, spawner(command), connection, say, Runtimes(connection))

        return self.with_manager(lambda manager: supervisor(manager).run())

    def plan(self) -> tuple[Options, list[str]]:
        """Every flag checked before a child starts, and the children's command line (without --queue)."""
        manager = self.manager
        connection = manager.connection(self.argument("connection") or None)
        queues = [connection.check_queue(queue) for queue in parse_queues(self.option("queue"))] or [connection.queue]
        check_has_worker(connection)
        strategy = check_strategy(self.option("balance"))
        pools = len(pools_for(strategy, queues))
        minimum = positive_int(self.option("min-processes"), "--min-processes")
        given_max = self.option("max-processes")
        maximum = positive_int(given_max, "--max-processes") if given_max else max(DEFAULT_MAX, minimum * pools)
        limits = Limits(minimum, maximum, positive_int(self.option("max-shift"), "--max-shift"))
        limits.check(pools)
        cooldown = positive_seconds(self.option("balance-cooldown"), "--balance-cooldown")
        options = Options(connection.name, tuple(queues), strategy, limits, cooldown)
        command = [sys.executable, artisan_script(), "queue:work", connection.name, *self.passed_on(manager)]
        return options, command

    def passed_on(self, manager: Any) -> list[str]:
        """queue:work's flags, checked here so a bad one is refused once instead of by every child."""
        flags: list[str] = []
        for flag, kind in PASSED_ON:
            value = self.option(flag)
            if not value:
                continue
            if kind == "int":
                positive_int(value, f"--{flag}")
            elif kind == "seconds":
                positive_seconds(value, f"--{flag}")
            elif kind == "backoff":
                for part in str(value).split(","):
                    positive_seconds(part, f"--{flag}")
            elif kind == "modules":
                task_modules(value, manager.settings.tasks)
            elif str(value).lower() not in ("text", "json"):
                raise QueueConfigurationError(f"--format must be text or json, got {value!r}.")
            flags.append(f"--{flag}={value}")
        if self.io.output.is_verbose():
            flags.append("-v")
        elif self.io.output.is_quiet():
            flags.append("-q")
        return flags

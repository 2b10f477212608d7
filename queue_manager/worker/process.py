"""``python -m queue_manager.worker [taskiq worker arguments]``: the process ``queue:work`` becomes.

With one worker process (the default) TaskIQ's worker runs right here, without TaskIQ's process manager
(which would start a worker again each time it stops), so a worker that stops by itself (``--max-jobs``,
``--max-time``, ``--memory``, ``--stop-when-empty``, ``queue:restart``) ends this process with its exit
code and the process manager you run it under (Supervisor, systemd) starts the new code. With
``--workers=N`` TaskIQ's process manager runs N worker processes, as ``taskiq worker`` does; with ``--reload``
(development) it runs one, started again when a file of the app changes.
"""

from __future__ import annotations

import logging
import sys

from queue_manager.worker.receiver import QueueReceiver

RECEIVER = "queue_manager.worker.receiver:QueueReceiver"


def worker_argv(
    modules: list[str],
    workers: int = 1,
    max_async_tasks: int = 100,
    shutdown_timeout: int = 30,
    log_level: str = "WARNING",
) -> list[str]:
    """The command line of the worker process (TaskIQ's worker, with our receiver).

    TaskIQ's own INFO lines ("Executing task ...") are left out unless ``-v``: the job lines say it."""
    return [
        sys.executable, "-m", "queue_manager.worker", "queue_manager.worker:broker", *modules,
        "--workers", str(workers), "--max-async-tasks", str(max_async_tasks),
        "--wait-tasks-timeout", str(shutdown_timeout), "--shutdown-timeout", "5", "--log-level", log_level,
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from taskiq.cli.worker.args import WorkerArgs
    from taskiq.cli.worker.run import run_worker, start_listen

    args = WorkerArgs.from_cli(sys.argv[1:] if argv is None else argv)
    args.receiver = RECEIVER
    if args.workers > 1 or args.reload:  # TaskIQ's process manager: N workers, or one restarted on changes
        return run_worker(args) or 0
    if args.configure_logging:  # as TaskIQ's run_worker does for its process manager
        logging.basicConfig(level=args.log_level, format=args.log_format)
    logging.getLogger("taskiq").setLevel(args.log_level)
    start_listen(args)
    lifecycle = QueueReceiver.last
    return lifecycle.exit_code if lifecycle is not None else 0

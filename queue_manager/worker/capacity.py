"""How many jobs a ``taskiq worker`` process may hold at once, read from its own command line.

``queue:work``'s receiver is told its slots directly. A plain ``taskiq worker`` (the guide's
``taskiq worker bootstrap.broker:broker``) runs TaskIQ's own receiver, which tells the broker nothing: its
``--max-async-tasks`` plus ``--max-prefetch`` are read here, with TaskIQ's own parser, when the worker starts.
"""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Any

from drivers.base.contract import HoldsJobs


def worker_capacity(argv: list[str] | None = None) -> int | None:
    """Jobs this ``taskiq worker`` process may hold at once (0: no limit); None when it is not one."""
    argv = sys.argv if argv is None else argv
    if not argv or argv[0] != "worker":  # taskiq's CLI drops its own name and runs "worker ..."
        return None
    from taskiq.cli.worker.args import WorkerArgs

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            args = WorkerArgs.from_cli(argv[1:])
    except (Exception, SystemExit):
        return None
    if args.max_async_tasks is None or args.max_async_tasks <= 0:
        return 0
    return int(args.max_async_tasks) + max(0, int(args.max_prefetch))


def tell_capacity(broker: Any) -> None:
    """Tell a broker that fetches jobs itself how many this worker process may hold (if it is a taskiq worker)."""
    slots = worker_capacity()
    if slots is not None and isinstance(broker, HoldsJobs):
        broker.hold_at_most(slots)

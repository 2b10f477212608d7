"""Laravel's failed jobs: jobs that failed for good are recorded, to be listed, retried, forgotten or pruned.

``FailedJobs`` (``jobs``) is ``manager.failed``: it records failures (``recording``: never waiting long on the
store, with a local ``spool`` while it is away) and sends them again (``retrying``: claim, send, forget). The
stores keep the records (``record.FailedJob``; listings read ``summary.FailedJobSummary``): SQL through
SQLAlchemy (``database``, SQLite by default), Redis (``redis``) or nowhere (``null``). ``make_store``
(``stores``) picks one from ``FailedSettings`` and checks its libraries (without importing them); no store
connects, and SQLAlchemy is not imported, until it is first used.
"""

from __future__ import annotations

from queue_manager.failed.errors import FailedStoreUnreachableError, NotRetried, RetryIncompleteError
from queue_manager.failed.jobs import FailedJobs
from queue_manager.failed.libraries import check_libraries
from queue_manager.failed.record import FailedJob
from queue_manager.failed.retrying import Retried
from queue_manager.failed.store import FailedJobStore, LazyStore, hours_ago
from queue_manager.failed.stores import DEFAULT_SQLITE, make_store
from queue_manager.failed.summary import FailedJobSummary
from queue_manager.settings.failed import FailedSettings

__all__ = [
    "DEFAULT_SQLITE",
    "FailedJob",
    "FailedJobStore",
    "FailedJobSummary",
    "FailedJobs",
    "FailedSettings",
    "FailedStoreUnreachableError",
    "LazyStore",
    "NotRetried",
    "Retried",
    "RetryIncompleteError",
    "check_libraries",
    "hours_ago",
    "make_store",
]

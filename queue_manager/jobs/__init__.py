"""Job classes (Laravel's jobs): ``Job`` (``job``), their payload (``payload``), encrypted payloads
(``encryption``). What happens when one runs is ``queue_manager.running``'s."""

from __future__ import annotations

from queue_manager.jobs.job import Job, PendingJob

__all__ = ["Job", "PendingJob"]

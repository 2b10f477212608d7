"""The labels a job carries on the wire: every name is defined here once.

TaskIQ sends labels with each message (as strings); workers, drivers and the
fake read them back. The first four are TaskIQ's own names, so a job sent by
plain TaskIQ means the same thing here.
"""

from __future__ import annotations

QUEUE = "queue_name"  # the queue a job goes to (TaskIQ's routing label name)
DELAY = "delay"  # TaskIQ's relative delay, in seconds, as set by .with_labels(delay=5)
PRIORITY = "priority"  # TaskIQ's message priority (RabbitMQ queues with max_priority)
TIMEOUT = "timeout"  # TaskIQ's per-job timeout, in seconds

ETA = "eta"  # when the job is due, a Unix timestamp: survives waiting in a queue and retries
RETRIES = "retries"  # retries after the first attempt
BACKOFF = "backoff"  # seconds before each retry, or a list of them
ATTEMPT = "attempt"  # retries already made

# Job classes and job middleware (queue_manager.jobs): an attempt is a run of the job's code; a release puts it
# back on its queue (by itself, or by a job middleware before it ran); an exception is an attempt that raised.
RELEASES = "releases"  # times the job was put back on its queue
EXCEPTIONS = "exceptions"  # attempts that raised
RETRY_UNTIL = "retry_until"  # a Unix timestamp after which the job is not tried again (Job.retry_until())
UNIQUE = "unique"  # the name of the unique lock the job holds (released when it finishes, or when it starts)
UNIQUE_UNTIL_PROCESSING = "unique_until_processing"  # "1": the lock goes when the job starts, not when it ends
MAX_EXCEPTIONS = "max_exceptions"  # exceptions after which a job fails for good (a job class's max_exceptions)
FAIL_ON_TIMEOUT = "fail_on_timeout"  # "1": a timed-out attempt fails the job for good
UNIQUE_FOR = "unique_for"  # seconds a unique job's lock lasts at most (declared by its task or job class)
QUEUED_AT = "queued_at"  # when the job was sent, a Unix timestamp: insight's wait time (dispatch -> start)
TAGS = "tags"  # the job's tags, comma-separated (@task(tags=...), .with_tags(...), a job class's tags(), models' ids)

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

"""Alerts on the queues (``queue:monitor``): Laravel's ``QueueBusy`` when a queue holds ``--max`` jobs, and
Horizon's ``LongWaitDetected`` when a queue's wait passes its threshold (``QUEUE_WAITS``), once per crossing.
``waits`` estimates a queue's wait and finds its threshold; ``crossings`` remembers which queues are over."""

"""What happens to a job when it runs, wherever it runs (a worker, or in-process on the memory driver): its
attempts and retries (``retries``). The manager puts these on every connection's broker."""

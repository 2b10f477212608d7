"""What happens to a job when it runs, wherever it runs (a worker, or in-process on the memory driver): its
attempts, retries and releases (``retries``), what the running job can do about itself (``interactions``:
Laravel's InteractsWithQueue) and the job middleware it runs through (``pipeline``). The manager puts the
retry middleware on every connection's broker; ``@task`` functions and job classes run through the pipeline."""

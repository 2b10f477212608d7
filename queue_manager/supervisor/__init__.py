"""``queue:supervise``: Horizon's supervisor. It runs ``queue:work`` child processes for a connection's queues and
moves them to where the jobs wait (``balance``: the pure arithmetic; ``pool``: the children of one queue;
``supervisor``: the loop that watches, balances, restarts and stops them)."""

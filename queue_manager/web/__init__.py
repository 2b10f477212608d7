"""The queue's web routes: the health check (``health``, on by default) and the dashboard (``dashboard``,
opt-in), each added to the app by a function the provider calls (``add_health_route``, ``add_dashboard``),
which imports FastAPI only then: a worker-only app may not have it."""

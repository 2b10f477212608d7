# Middlewares the example app configures for every connection (QUEUE_MIDDLEWARES), and TaskIQ's Prometheus one.
import os

from taskiq import TaskiqMessage, TaskiqMiddleware


class Recorder(TaskiqMiddleware):
    """Records which connection's worker ran each job through it ($RECORD_DIR/middleware)."""

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        with open(os.path.join(os.environ["RECORD_DIR"], "middleware"), "a") as handle:
            handle.write(f"{message.task_name} {os.environ.get('QUEUE_WORKER_CONNECTION', 'inline')}\n")
        return message


def metrics() -> TaskiqMiddleware:
    """TaskIQ's Prometheus middleware, serving on $METRICS_PORT in the worker, its multiprocess files in
    $RECORD_DIR (by default they live in /tmp/taskiq_worker and add up across runs)."""
    from pathlib import Path

    from taskiq.middlewares.prometheus_middleware import PrometheusMiddleware

    return PrometheusMiddleware(
        metrics_path=Path(os.environ["RECORD_DIR"]) / "metrics",
        server_port=int(os.environ["METRICS_PORT"]),
        server_addr="127.0.0.1",
    )

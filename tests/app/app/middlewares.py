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
    """TaskIQ's Prometheus middleware, serving on $METRICS_PORT in the worker."""
    from taskiq.middlewares.prometheus_middleware import PrometheusMiddleware

    return PrometheusMiddleware(server_port=int(os.environ["METRICS_PORT"]), server_addr="127.0.0.1")

"""Brokers as a TaskIQ user builds them by hand, with TaskIQ's defaults (the baseline we compare with).

``taskiq worker benchmarks.raw:broker benchmarks.jobs`` with BENCH_DRIVER and BENCH_QUEUE set.
"""

from __future__ import annotations

import os

from taskiq import AsyncBroker


def make(driver: str, queue: str) -> AsyncBroker:
    if driver == "redis":
        from taskiq_redis import ListQueueBroker

        return ListQueueBroker("redis://127.0.0.1:6379/0", queue_name=queue)
    if driver == "redis_stream":
        from taskiq_redis import RedisStreamBroker

        return RedisStreamBroker("redis://127.0.0.1:6379/0", queue_name=queue, consumer_id="0")
    if driver == "rabbitmq":
        from taskiq_aio_pika import AioPikaBroker, Queue

        return AioPikaBroker("amqp://guest:guest@127.0.0.1:5672/", task_queues=[Queue(name=queue)])
    if driver == "nats":
        from taskiq_nats import PullBasedJetStreamBroker

        return PullBasedJetStreamBroker(
            "nats://127.0.0.1:4222", subject=f"raw.{queue}", stream_name=f"RAW_{queue}", durable=f"raw_{queue}"
        )
    if driver == "memory":
        from taskiq import InMemoryBroker

        return InMemoryBroker()
    raise ValueError(driver)


def __getattr__(name: str) -> AsyncBroker:
    if name == "broker":
        return make(os.environ["BENCH_DRIVER"], os.environ["BENCH_QUEUE"])
    raise AttributeError(name)

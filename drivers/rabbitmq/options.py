"""The RabbitMQ driver's options, validated at boot without importing aio-pika."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from drivers.base.options import DriverOptions, refuse, send_timeout
from drivers.rabbitmq.names import name_problem


class RabbitMQOptions(DriverOptions):
    exchange: str = Field("queues", min_length=1, max_length=200)
    queue_type: Literal["quorum", "classic"] = "quorum"
    max_priority: int | None = Field(
        None, ge=1, le=255, description="classic queues only: declare them with x-max-priority (job label 'priority')"
    )
    qos: int = Field(10, gt=0, description="messages a worker may hold unacknowledged")
    result_ttl: int = Field(86_400, gt=0, description="seconds an unread result queue lives")
    result_durable: bool = Field(
        False, description="results survive a RabbitMQ restart (durable queues: each result costs ~2x)"
    )
    connect_timeout: float = Field(5.0, gt=0, le=300)
    send_timeout: float = send_timeout()

    @field_validator("exchange")
    @classmethod
    def _exchange_not_reserved(cls, value: str) -> str:
        refuse(name_problem(value))
        return value

    @model_validator(mode="after")
    def _priority_needs_classic_queues(self) -> Self:
        if self.max_priority is not None and self.queue_type != "classic":
            raise ValueError(
                "max_priority needs queue_type 'classic': RabbitMQ's quorum queues have no message priorities "
                "(before RabbitMQ 4.0). Set both, or drop max_priority"
            )
        return self

"""Names RabbitMQ would refuse, caught before they reach it (at boot, at dispatch, in every command).

What the AMQP client (pamqp) sends at all: letters a-z and A-Z, digits and ``- _ . : @ # , / +`` and the space,
at most 255 bytes (AMQP's shortstr); anything else (``? [ { } \\ ' $ %``, accents, control characters) it refuses
with a bare ValueError before anything is sent. RabbitMQ itself reserves names starting with ``amq.`` (exactly
that, lower case): declaring one is refused with ACCESS_REFUSED, which closes the channel every publish shares.
A test tries every character class on the real server, so this rule stays what the client and the server refuse.
"""

from __future__ import annotations

import re

AMQP_RESERVED = "amq."
MAX_BYTES = 255
_REFUSED = re.compile(r"[^a-zA-Z0-9\-_.:@#,/+ ]")  # outside pamqp's queue-name and exchange-name domains


def name_problem(name: str) -> str | None:
    """A queue or exchange name RabbitMQ refuses (a sentence), or None; also the driver's queue rule."""
    refused = sorted(set(_REFUSED.findall(name)))
    if refused:
        shown = " ".join(repr(ch)[1:-1] for ch in refused)
        return (
            f"RabbitMQ names may hold only letters a-z and A-Z, digits and - _ . : @ # , / + (its client sends "
            f"nothing else), not {shown}: use '-' or '_' instead"
        )
    if name.startswith(AMQP_RESERVED):
        return (
            "RabbitMQ reserves names starting with 'amq.' for its own queues and exchanges (declaring one is "
            "refused with ACCESS_REFUSED): pick a name without that prefix"
        )
    if len(name.encode()) > MAX_BYTES:
        return f"RabbitMQ names are at most {MAX_BYTES} bytes long"
    return None

"""Creating and removing the stores of the failed-jobs tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import sqlalchemy as sa
from redis.asyncio import Redis

REDIS_URL = "redis://127.0.0.1:6379/0"
STORES = ["sqlite", "postgres", "mysql", "redis"]


async def delete_keys(prefix: str) -> None:
    async with Redis.from_url(REDIS_URL) as client:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)


async def drop_table(url: str, table: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    finally:
        await engine.dispose()

"""Queue names that would break a Redis Cluster hash tag (issue 22 item 13), on a real cluster (tests/clusters.py).

A queue's keys are tagged ``queues:{<queue>}``; a ``}`` or ``{`` in the name moved the tag (``}x{`` gave
``queues:{}x{}``, no tag at all), so the queue's list, ``:delayed`` and ``:reserved`` fell into different slots:
counting and clearing raised CrossSlotTransactionError and a worker crashed on EVALSHA. Such names are refused by
the Redis drivers' queue rule, everywhere; every other name keeps working on the cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_manager import QueueConfigurationError, task
from tests.clusters import redis_cluster
from tests.helpers import one_connection_manager, unique

pytestmark = [pytest.mark.usefixtures("clean_env", "no_current_manager"), pytest.mark.fault]


@task(name="tests.cluster_names.job")
async def job(n: int) -> int:
    return n


@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
async def test_names_that_break_the_hash_tag_are_refused_and_others_work(driver: str, tmp_path: Path) -> None:
    with redis_cluster(tmp_path) as cluster:
        manager = one_connection_manager(driver, cluster.url, unique("q"), cluster=True)
        conn = manager.connection(driver)
        try:
            for bad in ("}", "}x{", "a{b}c"):
                for attempt in (conn.size, conn.clear, conn.counts, conn.pause):
                    with pytest.raises(QueueConfigurationError, match="cannot be used on redis"):
                        await attempt(bad)
                with pytest.raises(QueueConfigurationError, match="cannot be used on redis"):
                    await conn.dispatch(job, 1).on_queue(bad)
                with pytest.raises(QueueConfigurationError, match="cannot be used on redis"):
                    conn.broker.listen_to([bad])  # type: ignore[attr-defined]
            odd = "a:b#c@d/e.f"  # no braces: one slot for all of its keys
            await conn.dispatch(job, 1).on_queue(odd)
            await conn.dispatch(job, 2).on_queue(odd).delay(600)
            counts = await conn.counts(odd)
            assert (counts.waiting, counts.delayed) == (1, 1)
            assert await conn.clear(odd) == 2
        finally:
            await manager.shutdown()

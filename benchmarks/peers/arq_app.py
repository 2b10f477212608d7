from urllib.parse import urlsplit

from arq.connections import RedisSettings

from benchmarks.peers.common import BROKER_URL, acount

_url = urlsplit(BROKER_URL)
REDIS = RedisSettings(host=_url.hostname or "127.0.0.1", port=_url.port or 6379, database=int(_url.path[1:] or 0))


async def job(ctx: dict, run: str, number: int) -> None:
    await acount(run, number)


class WorkerSettings:
    functions = [job]
    redis_settings = REDIS
    queue_name = "bench_arq"
    max_jobs = 100
    keep_result = 0
    poll_delay = 0.01

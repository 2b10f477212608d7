import dramatiq
from dramatiq.brokers.redis import RedisBroker

from benchmarks.peers.common import BROKER_URL, count

broker = RedisBroker(url=BROKER_URL)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench_dramatiq", max_retries=0)
def job(run: str, number: int) -> None:
    count(run, number)

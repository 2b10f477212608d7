from celery import Celery

from benchmarks.peers.common import BROKER_URL, count

app = Celery("bench", broker=BROKER_URL)
app.conf.task_ignore_result = True
app.conf.broker_connection_retry_on_startup = True


@app.task(name="peer.job")
def job(run: str, number: int) -> None:
    count(run, number)

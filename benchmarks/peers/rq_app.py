from benchmarks.peers.common import count


def job(run: str, number: int) -> None:
    count(run, number)

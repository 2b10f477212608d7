"""The spool: failed jobs a process could not write to its store, kept whole on disk, one file each, taken by
one process at a time, bounded."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from queue_manager.failed import spool as spool_module
from queue_manager.failed.spool import Spool, SpoolFullError
from tests.unit.failed.test_failed_store import make_job


def test_a_record_is_kept_whole_and_deleted_once_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "postgresql+asyncpg://app:secret@db/app#failed_jobs")
    job = make_job(1, "x" * 10_000)
    path = spool.add(job)
    assert path.parent == spool.directory and spool.directory.is_relative_to(tmp_path / "storage" / "queue")
    assert "secret" not in str(spool.directory), "the directory is named by a hash of the store"
    assert spool.pending() == [path]
    with spool.taking(path) as taken:
        assert taken == job
    assert spool.pending() == [] and not path.exists()


def test_a_record_stays_when_writing_it_fails(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "store")
    path = spool.add(make_job(1))
    with pytest.raises(ConnectionError), spool.taking(path) as taken:
        assert taken is not None
        raise ConnectionError("the store went away again")
    assert spool.pending() == [path]


def test_a_record_another_process_is_writing_is_left_to_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "store")
    path = spool.add(make_job(1))
    with open(path, "rb") as other:  # another process's lock (flock locks are per open file)
        fcntl.flock(other, fcntl.LOCK_EX)
        with spool.taking(path) as taken:
            assert taken is None
    assert path.exists()


def test_each_store_has_its_own_spool(tmp_path: Path) -> None:
    first, second = Spool(tmp_path, "redis://a/0#failed"), Spool(tmp_path, "redis://b/0#failed")
    first.add(make_job(1))
    assert second.pending() == [] and len(first.pending()) == 1


def test_a_file_that_is_not_a_record_is_an_error_and_can_be_set_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "store")
    spool.directory.mkdir(parents=True)
    path = spool.directory / "broken.json"
    path.write_text('{"id": "x"}')
    with pytest.raises(ValueError, match="not a failed job record"), spool.taking(path):
        pass
    assert spool.set_aside(path).name == "broken.rejected" and spool.pending() == []


def test_the_spool_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path, "store")
    monkeypatch.setattr(spool_module, "MAX_FILES", 2)
    spool.add(make_job(1))
    spool.add(make_job(2))
    with pytest.raises(SpoolFullError, match="is full"):
        spool.add(make_job(3))
    assert len(spool.pending()) == 2

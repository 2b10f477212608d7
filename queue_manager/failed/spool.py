"""Failed jobs a process could not write to its store (down, cut off): kept on this machine's disk until the
store answers, so an outage of the store loses no record and holds up no worker.

One file per record, ``<base_path>/storage/queue/failed_spool/<store>/<id>.json``, written whole (a temporary
file, fsync, rename). ``<store>`` is a hash of the store's URL and table (or prefix), so a record is only ever
written to the store it was meant for. Several processes may flush one spool at once: a file is locked
(``flock``, released if its process dies) while it is written to the store and deleted, and the stores keep
one record when the same one is logged twice. A record the store refuses for another reason than not
answering is set aside as ``<id>.rejected`` for a person to look at, instead of being tried forever.

The spool is bounded (``MAX_FILES``, ``MAX_BYTES``): past that a record is refused (``SpoolFullError``) and
its worker logs the failure whole at ERROR, as without a spool.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from queue_manager.failed.record import FailedJob

SPOOL_DIR = Path("storage") / "queue" / "failed_spool"  # under the app's base_path
MAX_FILES = 10_000
MAX_BYTES = 2**30
SUFFIX = ".json"


class SpoolFullError(OSError):
    """The spool holds ``MAX_FILES`` records or ``MAX_BYTES`` already."""


class Spool:
    def __init__(self, base_path: Path, store_identity: str) -> None:
        digest = hashlib.sha256(store_identity.encode()).hexdigest()[:16]
        self.directory = Path(base_path) / SPOOL_DIR / digest

    def pending(self) -> list[Path]:
        """The records waiting, oldest first."""
        found: list[tuple[float, str]] = []
        try:
            for entry in os.scandir(self.directory):
                if entry.name.endswith(SUFFIX):
                    try:
                        found.append((entry.stat().st_mtime, entry.path))
                    except FileNotFoundError:  # written to the store meanwhile
                        continue
        except FileNotFoundError:
            return []
        return [Path(path) for _, path in sorted(found)]

    def add(self, job: FailedJob) -> Path:
        """Write ``job`` whole, or raise ``SpoolFullError`` / ``OSError`` (blocking: run it in a thread)."""
        data = json.dumps(job.to_dict()).encode()
        self._check_room(len(data))
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{job.id}{SUFFIX}"
        partial = self.directory / f".{job.id}.{uuid.uuid4().hex}.tmp"
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        return path

    def _check_room(self, size: int) -> None:
        files, used = 0, 0
        try:
            for entry in os.scandir(self.directory):
                files += 1
                try:
                    used += entry.stat().st_size
                except FileNotFoundError:
                    continue
        except FileNotFoundError:
            return
        if files >= MAX_FILES or used + size > MAX_BYTES:
            raise SpoolFullError(f"the spool {self.directory} is full ({files} files, {used} bytes)")

    @contextmanager
    def taking(self, path: Path) -> Iterator[FailedJob | None]:
        """The record of ``path`` while this caller holds it (None: another process does, or it is gone). The
        file is deleted if the block ends without an error; a file that is not a record raises ValueError."""
        try:
            handle = open(path, "rb")  # noqa: SIM115 (held open for its lock while the block runs)
        except FileNotFoundError:
            yield None
            return
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            if os.fstat(handle.fileno()).st_nlink == 0:  # written to the store by another process meanwhile
                yield None
                return
            try:
                job = FailedJob.from_dict(json.loads(handle.read()))
            except (KeyError, TypeError) as error:
                raise ValueError(f"not a failed job record: {error!r}") from error
            yield job
            path.unlink(missing_ok=True)

    def set_aside(self, path: Path) -> Path:
        """Keep a record the store refused under ``<id>.rejected``, out of the flush."""
        rejected = path.with_suffix(".rejected")
        os.replace(path, rejected)
        return rejected

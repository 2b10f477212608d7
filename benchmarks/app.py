"""The fastapi-startkit app the benchmarks boot: QueueProvider and nothing else."""

from __future__ import annotations

import os
import tempfile

from fastapi_startkit import Application

from queue_manager import QueueProvider

os.environ.setdefault("APP_ENV", "benchmark")
app = Application(base_path=tempfile.mkdtemp(prefix="queue-bench-"), providers=[QueueProvider])

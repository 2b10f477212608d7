"""``python -m queue_manager.worker [taskiq worker arguments]``: the process ``queue:work`` becomes."""

import sys

from queue_manager.worker.process import main

sys.exit(main())

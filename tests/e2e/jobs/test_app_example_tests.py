"""The example app's own tests of its job classes pass in the app, with the plugin found by its entry point
(issue 24, point 7: the fake with job classes, ``where`` on the instance, ``with_fake_queue_interactions``)."""

from __future__ import annotations

import pytest

from tests.helpers import run_python

pytestmark = pytest.mark.e2e


def test_the_apps_job_class_tests_pass() -> None:
    done = run_python("-m", "pytest", "tests/test_job_classes_example.py", "-q", "-p", "no:cacheprovider", env={})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
    assert "warning" not in done.stdout.lower(), done.stdout

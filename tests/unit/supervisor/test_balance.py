"""queue:supervise's balance arithmetic (Horizon's AutoScaler), as pure functions: the targets per strategy, the
steps bounded by --max-shift, --max-processes and --min-processes, and the boot at the minimum."""

from __future__ import annotations

import pytest

from drivers import QueueConfigurationError
from queue_manager.supervisor.balance import Limits, check_strategy, initial, pools_for, step, targets, time_to_clear


def settle(
    strategy: str, loads: dict[str, float], limits: Limits, start: dict[str, int] | None = None, rounds: int = 50
) -> list[dict[str, int]]:
    """Every balance from the boot (or ``start``) until nothing moves."""
    counts = start or initial(list(loads), limits)
    seen = [counts]
    for _ in range(rounds):
        counts = step(counts, targets(check_strategy(strategy), loads, limits), limits)
        if counts == seen[-1]:
            break
        seen.append(counts)
    return seen


def test_every_pool_boots_at_the_minimum_not_the_maximum() -> None:
    # Horizon #1295: its autoscaler started at maxProcesses
    assert initial(["a", "b"], Limits(min_processes=2, max_processes=10)) == {"a": 2, "b": 2}


def test_idle_queues_stay_at_the_minimum() -> None:
    limits = Limits(min_processes=1, max_processes=8, max_shift=3)
    assert settle("auto", {"a": 0, "b": 0}, limits) == [{"a": 1, "b": 1}]


def test_a_backlog_gets_processes_one_shift_at_a_time_up_to_what_the_others_leave() -> None:
    limits = Limits(min_processes=1, max_processes=4, max_shift=1)
    history = settle("auto", {"a": 100, "b": 0}, limits)
    assert history == [{"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 3, "b": 1}]  # b keeps its one (#622)


def test_a_larger_shift_moves_faster() -> None:
    limits = Limits(min_processes=1, max_processes=10, max_shift=4)
    history = settle("auto", {"a": 100, "b": 0}, limits)
    assert [h["a"] for h in history] == [1, 5, 9]


def test_processes_follow_the_share_of_the_load() -> None:
    limits = Limits(min_processes=1, max_processes=10, max_shift=10)
    final = settle("auto", {"a": 300, "b": 100}, limits)[-1]
    # targets 7.5 and 2.5, rounded up as Horizon does; b (the smaller) is served first, a gets what is left
    assert final == {"a": 7, "b": 3}


def test_the_total_never_exceeds_the_maximum() -> None:
    limits = Limits(min_processes=1, max_processes=6, max_shift=5)
    for loads in ({"a": 10, "b": 10, "c": 10}, {"a": 1000, "b": 1, "c": 0}, {"a": 5, "b": 50, "c": 500}):
        for counts in settle("auto", loads, limits):
            assert sum(counts.values()) <= 6, (loads, counts)
            assert min(counts.values()) >= 1


def test_when_the_backlog_drains_processes_go_back_to_the_minimum_by_the_shift() -> None:
    limits = Limits(min_processes=1, max_processes=5, max_shift=2)
    busy = settle("auto", {"a": 100, "b": 0}, limits)[-1]
    assert busy == {"a": 4, "b": 1}
    drained = settle("auto", {"a": 0, "b": 0}, limits, start=busy)
    assert drained == [{"a": 4, "b": 1}, {"a": 2, "b": 1}, {"a": 1, "b": 1}]


def test_the_load_moves_from_one_queue_to_the_other() -> None:
    limits = Limits(min_processes=1, max_processes=4, max_shift=1)
    on_a = settle("auto", {"a": 100, "b": 0}, limits)[-1]
    on_b = settle("auto", {"a": 0, "b": 100}, limits, start=on_a)
    # the shrinking pool goes first, so the growing one finds room in the same balance
    assert on_b[1] == {"a": 2, "b": 2}
    assert on_b[-1] == {"a": 1, "b": 3}


def test_the_minimum_is_kept_even_when_the_share_is_smaller() -> None:
    limits = Limits(min_processes=2, max_processes=6, max_shift=6)
    final = settle("auto", {"a": 1000, "b": 1}, limits)[-1]
    assert final == {"a": 4, "b": 2}


def test_simple_splits_evenly_whatever_the_load() -> None:
    limits = Limits(min_processes=1, max_processes=6, max_shift=6)
    assert settle("simple", {"a": 1000, "b": 0, "c": 0}, limits)[-1] == {"a": 2, "b": 2, "c": 2}


def test_off_is_one_pool_for_every_queue_between_min_and_max() -> None:
    assert pools_for(check_strategy("off"), ["a", "b"]) == [("a", "b")]
    assert pools_for(check_strategy("auto"), ["a", "b"]) == [("a",), ("b",)]
    limits = Limits(min_processes=1, max_processes=3, max_shift=1)
    assert settle("off", {"a,b": 5}, limits)[-1] == {"a,b": 3}
    assert settle("off", {"a,b": 0}, limits, start={"a,b": 3})[-1] == {"a,b": 1}


def test_strategy_names_are_checked() -> None:
    assert check_strategy("AUTO") == "auto"
    assert check_strategy("false") == "off"  # Horizon's 'balance' => false
    with pytest.raises(QueueConfigurationError, match="--balance must be auto, simple or off, got 'fast'"):
        check_strategy("fast")


def test_limits_no_balance_can_keep_are_refused_naming_the_flag() -> None:
    with pytest.raises(QueueConfigurationError, match=r"--max-processes=3 is below .* at least 4"):
        Limits(min_processes=2, max_processes=3).check(pools=2)
    with pytest.raises(QueueConfigurationError, match="--max-shift must be"):
        Limits(max_shift=0).check(pools=1)
    Limits(min_processes=2, max_processes=4).check(pools=2)


def test_the_load_is_the_time_to_clear_when_every_busy_queue_has_a_run_time() -> None:
    # 10 jobs of 6 s take longer than 50 jobs of 0.1 s: the slow queue gets the larger share
    loads = time_to_clear({"reports": [(10, 6.0)], "emails": [(50, 0.1)], "idle": [(0, None)]})
    assert loads == {"reports": 60.0, "emails": 5.0, "idle": 0.0}
    wanted = targets(check_strategy("auto"), loads, Limits(1, 13, 13))
    assert wanted["reports"] > wanted["emails"]


def test_without_a_run_time_for_a_busy_queue_the_load_is_the_jobs_waiting() -> None:
    assert time_to_clear({"a": [(10, 6.0)], "b": [(50, None)]}) == {"a": 10.0, "b": 50.0}  # never seconds + jobs
    assert time_to_clear({"a,b": [(3, None), (4, None)]}) == {"a,b": 7.0}  # one pool of several queues (off)

"""A service reports NOT_SERVING on an outage, not on one slow readiness round."""

import pytest

from servicekit.grpc_server import ServingState


def test_a_server_serves_after_its_first_passing_round() -> None:
    state = ServingState(failure_threshold=3)
    assert state.serving is False
    assert state.observe(passed=False) is False
    assert state.observe(passed=True) is True


def test_one_or_two_failing_rounds_between_passing_ones_keep_it_serving() -> None:
    state = ServingState(failure_threshold=3)
    state.observe(passed=True)
    outcomes = [False, True, False, False, True, False, True, True, False, False]
    assert [state.observe(passed) for passed in outcomes] == [True] * len(outcomes)


def test_failing_rounds_in_a_row_stop_it_serving_until_a_round_passes() -> None:
    state = ServingState(failure_threshold=3)
    state.observe(passed=True)
    assert [state.observe(False) for _ in range(4)] == [True, True, False, False]
    assert state.observe(passed=True) is True
    assert state.failures_in_a_row == 0


def test_a_threshold_of_one_reports_every_failing_round() -> None:
    state = ServingState(failure_threshold=1)
    state.observe(passed=True)
    assert state.observe(passed=False) is False


def test_a_threshold_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ServingState(failure_threshold=0)

"""The SMTP AUTH failure throttle: a sliding window per client address."""

import pytest

from mailstream.gateway.smtp.throttle import AuthThrottle


def test_auth_throttle_counts_failures_per_address_in_a_sliding_window():
    now = [1000.0]
    throttle = AuthThrottle(max_failures=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
        now[0] += 10
    assert throttle.retry_after("10.0.0.1") == pytest.approx(30)  # the first failure leaves at t=1060
    assert throttle.retry_after("10.0.0.2") == 0
    now[0] = 1060.0
    assert throttle.retry_after("10.0.0.1") == 0


def test_a_forgiven_attempt_does_not_count():
    now = [1000.0]
    throttle = AuthThrottle(max_failures=1, window_s=60, clock=lambda: now[0])
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") > 0  # counted while it is checked
    throttle.forgive("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 0

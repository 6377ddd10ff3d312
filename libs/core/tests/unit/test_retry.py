"""The one retry policy: transient errors are retried with backoff, others raised at once."""

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, RecordTooLargeError

from mailstream.core.retry import MailstreamError, TransientError, backoff, is_transient, retrying


@pytest.mark.parametrize(
    "exc, transient",
    [
        (ConnectionRefusedError(), True),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), True),
        (KafkaConnectionError(), True),
        (RecordTooLargeError(), False),
        (TransientError(), True),
        (MailstreamError(), False),
        (ValueError("bad input"), False),
    ],
)
def test_what_counts_as_transient(exc, transient):
    assert is_transient(exc) is transient


def test_backoff_doubles_and_is_capped():
    assert [backoff(n) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert backoff(30) == 5.0


async def test_transient_errors_are_retried_until_it_works():
    attempts = []

    async def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionResetError("blip")
        return "done"

    assert await retrying(flaky, what="test", max_delay=0.01) == "done"
    assert len(attempts) == 3


async def test_other_errors_are_raised_at_once():
    attempts = []

    async def broken():
        attempts.append(1)
        raise ValueError("bad record")

    with pytest.raises(ValueError):
        await retrying(broken, what="test")
    assert len(attempts) == 1

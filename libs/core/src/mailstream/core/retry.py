"""One retry policy: what counts as transient, and how long to wait before trying again.

An error is transient when the same work may succeed later without any change to it: the
database is down or restarting (`db.DATABASE_DOWN`), Kafka refused or timed out (aiokafka's
errors say so in `retriable`), or an error of ours declares `retriable = True`. Everything
else belongs to the input and is not retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import ClassVar, TypeVar

from aiokafka.errors import KafkaError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from mailstream.core.db import DATABASE_DOWN

log = logging.getLogger("mailstream.core.retry")
T = TypeVar("T")

FIRST_DELAY_S = 0.1
MAX_DELAY_S = 5.0


class MailstreamError(Exception):
    """Base of the project's errors: `retriable` says whether the same work may succeed later."""

    retriable: ClassVar[bool] = False


class TransientError(MailstreamError):
    retriable: ClassVar[bool] = True


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DATABASE_DOWN):
        return True
    if isinstance(exc, KafkaError):
        return bool(exc.retriable)
    return bool(getattr(exc, "retriable", False))


def backoff(attempt: int, *, first: float = FIRST_DELAY_S, most: float = MAX_DELAY_S) -> float:
    """Seconds to wait before attempt number `attempt` + 1 (attempt counts from 1): doubling, capped."""
    return min(most, first * 2 ** (attempt - 1))


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    transient: Callable[[BaseException], bool] = is_transient,
    max_delay: float = MAX_DELAY_S,
) -> T:
    """Runs `operation` until it returns, retrying transient errors with backoff (forever: the
    caller's work is durable only once it succeeds); any other error is raised at once."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s failed, retrying in %.1f s: %r",
            what,
            state.next_action.sleep if state.next_action else 0.0,
            exc,
            extra={"fields": {"attempt": state.attempt_number}},
        )

    retry = AsyncRetrying(
        retry=retry_if_exception(transient),
        wait=wait_exponential(multiplier=FIRST_DELAY_S, min=FIRST_DELAY_S, max=max_delay),
        before_sleep=before_sleep,
        sleep=asyncio.sleep,
        reraise=True,
    )

    async def attempt() -> T:  # tenacity awaits only coroutine functions (a lambda returning one is "sync")
        return await operation()

    return await retry(attempt)

"""Fakes the gateway's unit tests share: a PostgreSQL pool whose connections open transactions
that do nothing (the code under test only needs the `async with`)."""

from __future__ import annotations

from contextlib import asynccontextmanager


class FakeConnection:
    def transaction(self):
        @asynccontextmanager
        async def transaction():
            yield

        return transaction()


class FakePool:
    @asynccontextmanager
    async def acquire(self):
        yield FakeConnection()

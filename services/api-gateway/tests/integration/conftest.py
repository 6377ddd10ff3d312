"""Fixtures and helpers of the gateway's integration tests (HTTP calls in HubSpot shape)."""

from __future__ import annotations

import pytest

SEND = "/marketing/v3/transactional/single-email/send"
EMAILS = "/mailstream/v1/emails"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create_email(api, key, *, convert=True, **fields):
    body = {"name": "n", "subject": "s", "fromEmail": "orders@shop.example", "html": "<p>x</p>", **fields}
    created = await api.post(EMAILS, headers=auth(key), json=body)
    assert created.status_code == 201, created.text
    email_id = created.json()["emailId"]
    if convert:
        converted = await api.post(f"{EMAILS}/{email_id}/convert-to-single-send-api", headers=auth(key))
        assert converted.status_code == 200, converted.text
    return email_id


def assert_error_shape(response, status, category):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["category"] == category and body["message"]
    assert body["correlationId"] == response.headers["x-hubspot-correlation-id"]
    return body


class Helpers:
    SEND = SEND
    EMAILS = EMAILS
    auth = staticmethod(auth)
    create_email = staticmethod(create_email)
    assert_error_shape = staticmethod(assert_error_shape)


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers


# ---- a private gateway process (for 503, restart and replica tests; the shared one is left alone) ----

import time  # noqa: E402

from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402
from private_gateway import PrivateGateway  # noqa: E402

from mailstream.schemas import DecodeError, SendRequested, decode  # noqa: E402
from mailstream.schemas.topics import SEND_REQUESTED  # noqa: E402
from testkit import common_settings  # noqa: E402


@pytest.fixture
async def private_gateway(stack, tmp_path):
    """Factory: `await private_gateway({"MAILSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:1"})`; all stopped at the end."""
    started: list[PrivateGateway] = []

    async def start(env: dict[str, str] | None = None) -> PrivateGateway:
        gw = PrivateGateway(env or {}, str(tmp_path / f"gateway-{len(started)}.log"))
        started.append(gw)
        return await gw.start()

    yield start
    for gw in started:
        gw.stop()


class SendRequestedTap:
    """Reads email.send.requested from the offsets at creation: which status ids were published, when."""

    def __init__(self) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=common_settings().kafka_bootstrap, enable_auto_commit=False)
        self.seen: dict[str, list[float]] = {}

    async def start(self) -> SendRequestedTap:
        await self.consumer.start()
        partitions = [TopicPartition(SEND_REQUESTED.name, p) for p in range(SEND_REQUESTED.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now, before the test publishes
            await self.consumer.position(tp)
        return self

    async def collect(self, status_ids: set[str], *, within: float, settle: float = 2.0) -> dict[str, list[float]]:
        """Records for these status ids (value: Kafka timestamps, s), waiting until all came, then `settle` s more."""
        deadline = time.monotonic() + within
        complete_at = None
        while time.monotonic() < deadline:
            batches = await self.consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    try:
                        event = decode(record.value, SendRequested)
                    except DecodeError:  # other suites publish junk here on purpose (dead-letter tests)
                        continue
                    if event.status_id in status_ids:
                        self.seen.setdefault(event.status_id, []).append(record.timestamp / 1000)
            if complete_at is None and status_ids <= set(self.seen):
                complete_at = time.monotonic()
            if complete_at is not None and time.monotonic() - complete_at >= settle:
                break
        return {sid: self.seen.get(sid, []) for sid in status_ids}

    async def stop(self) -> None:
        await self.consumer.stop()


@pytest.fixture
async def send_requested_tap(stack):
    tap = await SendRequestedTap().start()
    yield tap
    await tap.stop()

"""Helpers of the webhook tests (tests/e2e/test_webhooks.py, tests/faults/test_webhook_faults.py):
sends made cheaply (one one-off send to many addresses) and endpoints made through the API."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

WEBHOOKS = "/mailstream/v1/webhooks"
ONE_OFF = "/mailstream/v1/one-off-sends"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def make_email(api: httpx.AsyncClient, key: str) -> int:
    created = await api.post(
        "/mailstream/v1/emails",
        headers=auth(key),
        json={
            "name": "webhook test",
            "subject": "Your receipt",
            "fromEmail": "orders@shop.example",
            "html": "<p>Thanks, {{ contact.firstname|default('there') }}.</p>",
            "subscriptionType": "TRANSACTIONAL",
        },
    )
    assert created.status_code == 201, created.text
    return created.json()["emailId"]


async def send_to(api: httpx.AsyncClient, key: str, email_id: int, addresses: list[str]) -> str:
    """One one-off send to the addresses (up to 10,000 in one call); its id."""
    reply = await api.post(ONE_OFF, headers=auth(key), json={"emailId": email_id, "audience": {"addresses": addresses}})
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


def addresses(n: int) -> tuple[str, list[str]]:
    domain = f"wh-{uuid.uuid4().hex[:8]}.example"
    return domain, [f"r{i:05d}@{domain}" for i in range(n)]


async def create_webhook(api: httpx.AsyncClient, key: str, url: str, **fields) -> dict:
    reply = await api.post(WEBHOOKS, headers=auth(key), json={"url": url, **fields})
    assert reply.status_code == 201, reply.text
    return reply.json()


async def deliveries(api: httpx.AsyncClient, key: str, webhook_id: str, **params) -> list[dict]:
    reply = await api.get(f"{WEBHOOKS}/{webhook_id}/deliveries", headers=auth(key), params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()["results"]


async def wait_replay_done(api: httpx.AsyncClient, key: str, webhook_id: str, replay_id: str, within: float) -> dict:
    deadline = time.monotonic() + within
    while True:
        found = (await api.get(f"{WEBHOOKS}/{webhook_id}/replays", headers=auth(key))).json()["results"]
        mine = next(r for r in found if r["id"] == replay_id)
        if mine["state"] == "DONE" or time.monotonic() > deadline:
            return mine
        await asyncio.sleep(0.2)

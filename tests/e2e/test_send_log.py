"""One send followed through the services' JSON logs by its status id (issue 18): the gateway,
the renderer, the sender and the tracker each write a line for it that carries its status_id and
message_id, so `grep <statusId> .mailstream/logs/*.log` tells the send's whole story."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

LOGS = Path(__file__).resolve().parents[2] / ".mailstream" / "logs"
SERVICES = ("gateway", "renderer", "sender", "tracker")


def lines_naming(status_id: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {s: [] for s in SERVICES}
    for service in SERVICES:
        log = LOGS / f"{service}.log"
        for line in log.read_text(errors="replace").splitlines() if log.exists() else ():
            if status_id in line and line.startswith("{"):
                found[service].append(json.loads(line))
    return found


async def test_one_send_is_followed_through_every_service_by_its_status_id(new_account, api, unique_address):
    headers = {"Authorization": f"Bearer {new_account('send-log')}"}
    created = await api.post(
        "/mailstream/v1/emails",
        headers=headers,
        json={
            "name": "Receipt",
            "subject": "Your receipt",
            "fromName": "Shop",
            "fromEmail": "orders@shop.example",
            "html": "<p>Thanks.</p>",
            "subscriptionType": "TRANSACTIONAL",
        },
    )
    email_id = created.json()["emailId"]
    await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=headers)
    reply = await api.post(
        "/marketing/v3/transactional/single-email/send",
        headers=headers,
        json={"emailId": email_id, "message": {"to": unique_address()}},
    )
    assert reply.status_code == 200, reply.text
    status_id = reply.json()["statusId"]

    wanted = {
        "gateway": "accepted",
        "renderer": "rendered",
        "sender": "delivered",
        "tracker": "recorded delivered",
    }
    deadline = time.monotonic() + 30
    while True:
        found = lines_naming(status_id)
        steps = {s: {line["msg"] for line in found[s]} for s in SERVICES}
        if all(wanted[s] in steps[s] for s in SERVICES) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert all(wanted[s] in steps[s] for s in SERVICES), steps
    message_ids = {line.get("message_id") for s in SERVICES for line in found[s] if line["msg"] == wanted[s]}
    assert len(message_ids) == 1 and None not in message_ids, message_ids  # one message id, in every line
    assert {line["service"] for s in SERVICES for line in found[s]} == set(SERVICES)

"""Fixtures and helpers of the gateway's integration tests (HTTP calls in HubSpot shape)."""

from __future__ import annotations

import pytest

SEND = "/marketing/v3/transactional/single-email/send"
EMAILS = "/mailstream/v1/emails"
DATABASE_URL = "postgresql://mailstream:mailstream@127.0.0.1:5432/mailstream"


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
    assert body["correlationId"] == response.headers["x-correlation-id"]
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

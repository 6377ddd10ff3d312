"""The gateway's HTTP contract against the running gateway (real PostgreSQL and Kafka)."""

import uuid

import pytest

pytestmark = pytest.mark.integration

SEND = "/marketing/v3/transactional/single-email/send"


def auth(key):
    return {"Authorization": f"Bearer {key}"}


async def single_send_email(api, key):
    created = await api.post(
        "/mailstream/v1/emails",
        headers=auth(key),
        json={"name": "n", "subject": "s", "fromEmail": "orders@shop.example", "html": "<p>x</p>"},
    )
    assert created.status_code == 201, created.text
    email_id = created.json()["emailId"]
    assert (
        await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=auth(key))
    ).status_code == 200
    return email_id


def assert_error_shape(response, status, category):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["category"] == category and body["message"]
    assert body["correlationId"] == response.headers["x-correlation-id"]
    return body


async def test_a_missing_or_bad_key_is_401_in_hubspot_shape(api):
    assert_error_shape(await api.post(SEND, json={}), 401, "INVALID_AUTHENTICATION")
    assert_error_shape(await api.post(SEND, json={}, headers=auth("ms_nope")), 401, "INVALID_AUTHENTICATION")


async def test_a_malformed_request_is_400_naming_the_field(api, new_account):
    key = new_account()
    body = assert_error_shape(
        await api.post(SEND, headers=auth(key), json={"emailId": 1, "message": {}}), 400, "VALIDATION_ERROR"
    )
    assert [e["in"] for e in body["errors"]] == ["message.to"]


async def test_an_unknown_email_completes_with_missing_content(api, new_account):
    key = new_account()
    reply = await api.post(SEND, headers=auth(key), json={"emailId": 999999999, "message": {"to": "a@example.com"}})
    assert reply.status_code == 200
    assert (reply.json()["status"], reply.json()["sendResult"]) == ("COMPLETE", "MISSING_CONTENT")


async def test_a_repeated_send_id_returns_the_first_status(api, new_account):
    key = new_account()
    email_id = await single_send_email(api, key)
    body = {"emailId": email_id, "message": {"to": "dup@example.com", "sendId": f"order-{uuid.uuid4()}"}}
    first = (await api.post(SEND, headers=auth(key), json=body)).json()
    second = (await api.post(SEND, headers=auth(key), json=body)).json()
    assert first["statusId"] == second["statusId"]


async def test_another_accounts_status_and_email_are_404(api, new_account):
    owner, other = new_account(), new_account()
    email_id = await single_send_email(api, owner)
    status_id = (
        await api.post(SEND, headers=auth(owner), json={"emailId": email_id, "message": {"to": "x@example.com"}})
    ).json()["statusId"]
    assert_error_shape(
        await api.get(f"/marketing/v3/email/send-statuses/{status_id}", headers=auth(other)), 404, "OBJECT_NOT_FOUND"
    )
    assert_error_shape(await api.get(f"/mailstream/v1/emails/{email_id}", headers=auth(other)), 404, "OBJECT_NOT_FOUND")
    other_send = await api.post(
        SEND, headers=auth(other), json={"emailId": email_id, "message": {"to": "x@example.com"}}
    )
    assert other_send.json()["sendResult"] == "MISSING_CONTENT"


async def test_ops_endpoints(api):
    assert (await api.get("/healthz")).status_code == 200
    ready = await api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": True, "kafka": True}
    assert "mailstream_gateway_sends_total" in (await api.get("/metrics")).text

"""The gateway's HTTP contract against the running gateway (real PostgreSQL and Kafka)."""

import asyncio
import uuid

import asyncpg
import pytest

from testkit import common_settings

pytestmark = pytest.mark.integration
DATABASE_URL = common_settings().database_url


async def test_a_missing_or_bad_key_is_401_in_hubspot_shape(api, h):
    h.assert_error_shape(await api.post(h.SEND, json={}), 401, "INVALID_AUTHENTICATION")
    bad = await api.post(h.SEND, json={}, headers=h.auth("ms_nope"))
    h.assert_error_shape(bad, 401, "INVALID_AUTHENTICATION")
    assert bad.headers["x-hubspot-auth-failure"] == "401 Unauthorized"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"emailId": 1, "message": {}}, ["message.to"]),
        ({"message": {"to": "a@example.com"}}, ["emailId"]),
        ({"emailId": "x", "message": {"to": "a@example.com"}}, ["emailId"]),
        ({"emailId": 1, "message": {"to": "a@example.com", "cc": "nope"}}, ["message.cc"]),
        ({"emailId": 1, "message": {"to": "a@example.com"}, "contactProperties": {"a": 1}}, ["contactProperties.a"]),
    ],
)
async def test_a_malformed_request_is_400_naming_the_field(api, new_account, h, body, fields):
    reply = await api.post(h.SEND, headers=h.auth(new_account()), json=body)
    assert [e["in"] for e in h.assert_error_shape(reply, 400, "VALIDATION_ERROR")["errors"]] == fields


async def test_an_unknown_or_unconverted_email_completes_with_missing_content(api, new_account, h):
    key = new_account()
    draft = await h.create_email(api, key, convert=False)
    for email_id in (999999999, draft):
        reply = await api.post(
            h.SEND, headers=h.auth(key), json={"emailId": email_id, "message": {"to": "a@example.com"}}
        )
        assert reply.status_code == 200
        assert (reply.json()["status"], reply.json()["sendResult"]) == ("COMPLETE", "MISSING_CONTENT")


@pytest.mark.parametrize("to", ["not-an-address", "noreply@example.com", "postmaster@example.com"])
async def test_a_bad_or_role_recipient_completes_with_invalid_to_address(api, new_account, h, to):
    key = new_account()
    email_id = await h.create_email(api, key)
    reply = await api.post(h.SEND, headers=h.auth(key), json={"emailId": email_id, "message": {"to": to}})
    assert (reply.status_code, reply.json()["status"], reply.json()["sendResult"]) == (
        200,
        "COMPLETE",
        "INVALID_TO_ADDRESS",
    )


async def test_a_contact_marked_bounced_or_spam_reported_completes_with_the_matching_result(api, new_account, h):
    key = new_account()
    email_id = await h.create_email(api, key)
    for status, result in (({"bounced": True}, "PREVIOUSLY_BOUNCED"), ({"spamReported": True}, "PREVIOUS_SPAM")):
        to = f"c-{uuid.uuid4().hex[:8]}@example.com"
        assert (await api.put(f"/mailstream/v1/contacts/{to}", headers=h.auth(key), json=status)).status_code == 200
        reply = await api.post(h.SEND, headers=h.auth(key), json={"emailId": email_id, "message": {"to": to}})
        assert reply.json()["sendResult"] == result


async def test_a_repeated_send_id_returns_the_first_status(api, new_account, h):
    key = new_account()
    email_id = await h.create_email(api, key)
    body = {"emailId": email_id, "message": {"to": "dup@example.com", "sendId": f"order-{uuid.uuid4()}"}}
    first = (await api.post(h.SEND, headers=h.auth(key), json=body)).json()
    second = (await api.post(h.SEND, headers=h.auth(key), json=body)).json()
    assert first["statusId"] == second["statusId"]


async def test_concurrent_duplicates_of_a_send_id_record_and_publish_one_send(api, new_account, h):
    key = new_account()
    email_id = await h.create_email(api, key)
    send_id = f"order-{uuid.uuid4()}"
    body = {"emailId": email_id, "message": {"to": f"dup-{uuid.uuid4().hex[:8]}@example.com", "sendId": send_id}}
    replies = await asyncio.gather(*(api.post(h.SEND, headers=h.auth(key), json=body) for _ in range(20)))
    assert {r.status_code for r in replies} == {200}
    assert len({r.json()["statusId"] for r in replies}) == 1
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM send_requests WHERE send_id = $1", send_id)
    finally:
        await conn.close()
    assert rows == 1


async def test_the_same_send_id_in_two_accounts_is_two_sends(api, new_account, h):
    send_id = f"order-{uuid.uuid4()}"
    ids = []
    for key in (new_account(), new_account()):
        email_id = await h.create_email(api, key)
        body = {"emailId": email_id, "message": {"to": "x@example.com", "sendId": send_id}}
        ids.append((await api.post(h.SEND, headers=h.auth(key), json=body)).json()["statusId"])
    assert ids[0] != ids[1]


async def test_another_accounts_objects_are_404_never_its_data(api, new_account, h):
    owner, other = new_account(), new_account()
    email_id = await h.create_email(api, owner)
    to = f"x-{uuid.uuid4().hex[:8]}@example.com"
    await api.put(f"/mailstream/v1/contacts/{to}", headers=h.auth(owner), json={"properties": {"secret": "s"}})
    status_id = (
        await api.post(h.SEND, headers=h.auth(owner), json={"emailId": email_id, "message": {"to": to}})
    ).json()["statusId"]
    a = h.auth(other)
    for reply in (
        await api.get(f"/marketing/v3/email/send-statuses/{status_id}", headers=a),
        await api.post(f"/mailstream/v1/sends/{status_id}/cancel", headers=a),
        await api.get(f"{h.EMAILS}/{email_id}", headers=a),
        await api.patch(f"{h.EMAILS}/{email_id}", headers=a, json={"subject": "mine"}),
        await api.post(f"{h.EMAILS}/{email_id}/publish", headers=a),
        await api.post(f"{h.EMAILS}/{email_id}/clone", headers=a),
        await api.post(f"{h.EMAILS}/{email_id}/archive", headers=a),
        await api.post(f"{h.EMAILS}/{email_id}/convert-to-single-send-api", headers=a),
        await api.get(f"/mailstream/v1/contacts/{to}", headers=a),
        await api.get("/mailstream/v1/stats", params={"emailId": email_id}, headers=a),
    ):
        body = h.assert_error_shape(reply, 404, "OBJECT_NOT_FOUND")
        assert "secret" not in reply.text and "orders@shop.example" not in reply.text, body
    assert email_id not in [e["emailId"] for e in (await api.get(h.EMAILS, headers=a)).json()["results"]]
    other_send = await api.post(h.SEND, headers=a, json={"emailId": email_id, "message": {"to": "x@example.com"}})
    assert other_send.json()["sendResult"] == "MISSING_CONTENT"
    assert (await api.get(f"{h.EMAILS}/{email_id}", headers=h.auth(owner))).status_code == 200


async def test_an_unknown_status_id_is_404(api, new_account, h):
    key = new_account()
    for sid in (str(uuid.uuid4()), "not-a-uuid"):
        h.assert_error_shape(
            await api.get(f"/marketing/v3/email/send-statuses/{sid}", headers=h.auth(key)), 404, "OBJECT_NOT_FOUND"
        )


async def test_ops_endpoints_and_openapi(api):
    assert (await api.get("/healthz")).status_code == 200
    ready = await api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": True, "kafka": True}
    assert "mailstream_gateway_sends_total" in (await api.get("/metrics")).text
    spec = (await api.get("/openapi.json")).json()
    assert "/marketing/v3/transactional/single-email/send" in spec["paths"]
    assert "/marketing/v3/email/send-statuses/{status_id}" in spec["paths"]
    send = spec["paths"]["/marketing/v3/transactional/single-email/send"]["post"]["responses"]
    assert {"200", "400", "401", "503"} <= set(send) and "422" not in send
    assert (await api.get("/docs")).status_code == 200

"""Emails (templates), contacts, users and API keys, stats: the gateway's own resources."""

import uuid

import asyncpg
import pytest

from mailstream.gateway.adapters import contacts
from testkit import common_settings

pytestmark = pytest.mark.integration
DATABASE_URL = common_settings().database_url


async def test_an_email_is_created_as_a_draft_with_text_derived_from_html(api, new_account, h):
    key = new_account()
    body = {
        "name": "Receipt",
        "subject": "Your order",
        "fromName": "Shop",
        "fromEmail": "orders@shop.example",
        "replyTo": ["help@shop.example"],
        "html": "<p>Thanks!</p><p><a href='https://shop.example/o/1'>Order</a></p>",
        "subscriptionType": "TRANSACTIONAL",
        "tracking": False,
    }
    email = (await api.post(h.EMAILS, headers=h.auth(key), json=body)).json()
    assert isinstance(email["emailId"], int) and email["state"] == "DRAFT" and email["version"] == 1
    assert email["text"] == "Thanks!\n\nOrder (https://shop.example/o/1)"
    assert (email["fromName"], email["replyTo"], email["tracking"]) == ("Shop", ["help@shop.example"], False)
    explicit = (await api.post(h.EMAILS, headers=h.auth(key), json={**body, "text": "plain"})).json()
    assert explicit["text"] == "plain"
    assert (await api.get(f"{h.EMAILS}/{email['emailId']}", headers=h.auth(key))).json() == email


async def test_a_bad_email_body_is_400_naming_the_field(api, new_account, h):
    key = new_account()
    for body, field in (
        ({"subject": "s", "fromEmail": "a@b.example"}, "name"),
        ({"name": "n", "subject": "s", "fromEmail": "nope"}, "fromEmail"),
        ({"name": "n", "subject": "s", "fromEmail": "a@b.example", "subscriptionType": "X"}, "subscriptionType"),
    ):
        reply = await api.post(h.EMAILS, headers=h.auth(key), json=body)
        assert [e["in"] for e in h.assert_error_shape(reply, 400, "VALIDATION_ERROR")["errors"]] == [field]


async def test_an_update_creates_a_new_immutable_version(api, new_account, h):
    key = new_account()
    email_id = await h.create_email(api, key, convert=False, html="<p>one</p>")
    updated = (
        await api.patch(f"{h.EMAILS}/{email_id}", headers=h.auth(key), json={"html": "<p>two</p>", "name": "v2"})
    ).json()
    assert (updated["version"], updated["html"], updated["text"], updated["name"]) == (2, "<p>two</p>", "two", "v2")
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        versions = await conn.fetch(
            "SELECT version, html FROM email_versions WHERE email_id = $1 ORDER BY version", email_id
        )
    finally:
        await conn.close()
    assert [(v["version"], v["html"]) for v in versions] == [(1, "<p>one</p>"), (2, "<p>two</p>")]


async def test_emails_are_listed_with_cursor_paging(api, new_account, h):
    key = new_account()
    ids = [await h.create_email(api, key, convert=False, name=f"e{i}") for i in range(5)]
    seen, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = (await api.get(h.EMAILS, headers=h.auth(key), params=params)).json()
        seen += [e["emailId"] for e in page["results"]]
        if "paging" not in page:
            break
        after = page["paging"]["next"]["after"]
    assert seen == ids


async def test_publish_clone_archive_and_convert(api, new_account, h):
    key = new_account()
    a = h.auth(key)
    email_id = await h.create_email(api, key, convert=False)
    published = (await api.post(f"{h.EMAILS}/{email_id}/publish", headers=a)).json()
    assert published["state"] == "PUBLISHED" and published["publishedAt"]
    refused = await api.post(f"{h.EMAILS}/{email_id}/convert-to-single-send-api", headers=a)
    assert "clone" in h.assert_error_shape(refused, 409, "CONFLICT")["message"]
    clone = await api.post(f"{h.EMAILS}/{email_id}/clone", headers=a)
    assert clone.status_code == 201
    clone = clone.json()
    assert (clone["state"], clone["clonedFrom"], clone["html"]) == ("DRAFT", email_id, published["html"])
    converted = (await api.post(f"{h.EMAILS}/{clone['emailId']}/convert-to-single-send-api", headers=a)).json()
    assert converted["singleSendApi"] is True
    archived = (await api.post(f"{h.EMAILS}/{email_id}/archive", headers=a)).json()
    assert archived["state"] == "ARCHIVED"
    listed = [e["emailId"] for e in (await api.get(h.EMAILS, headers=a)).json()["results"]]
    assert email_id not in listed and clone["emailId"] in listed
    with_archived = (await api.get(h.EMAILS, headers=a, params={"archived": "true"})).json()["results"]
    assert email_id in [e["emailId"] for e in with_archived]
    reply = await api.post(
        f"{h.EMAILS}/{email_id}/send", headers=a, json={"to": f"r-{uuid.uuid4().hex[:6]}@example.com"}
    )
    assert reply.json()["sendResult"] == "MISSING_CONTENT"


async def test_publishing_a_marketing_email_without_unsubscribe_link_is_refused(api, new_account, h):
    key = new_account()
    email_id = await h.create_email(api, key, convert=False, subscriptionType="MARKETING", html="<p>Sale</p>")
    refused = await api.post(f"{h.EMAILS}/{email_id}/publish", headers=h.auth(key))
    body = h.assert_error_shape(refused, 400, "VALIDATION_ERROR")
    assert "unsubscribe" in body["message"] and body["errors"][0]["in"] == "html"
    assert (await api.get(f"{h.EMAILS}/{email_id}", headers=h.auth(key))).json()["state"] == "DRAFT"
    await api.patch(
        f"{h.EMAILS}/{email_id}", headers=h.auth(key), json={"html": "<p>Sale</p><p>{{ unsubscribe_link }}</p>"}
    )
    assert (await api.post(f"{h.EMAILS}/{email_id}/publish", headers=h.auth(key))).json()["state"] == "PUBLISHED"


async def test_contacts_are_upserted_by_email_with_properties_and_statuses(api, new_account, h):
    key = new_account()
    to = f"Jane-{uuid.uuid4().hex[:6]}@Example.com"
    url = f"/mailstream/v1/contacts/{to}"
    first = (await api.put(url, headers=h.auth(key), json={"properties": {"firstname": "Jane"}})).json()
    assert first["email"] == to.lower() and first["subscriptionStatus"] == "NOT_SPECIFIED"
    second = (
        await api.put(
            url,
            headers=h.auth(key),
            json={
                "properties": {"lastname": "Doe"},
                "subscriptionStatus": "UNSUBSCRIBED",
                "quarantined": True,
                "doubleOptIn": "PENDING",
                "bounced": True,
                "spamReported": True,
            },
        )
    ).json()
    assert second["properties"] == {"firstname": "Jane", "lastname": "Doe"}
    assert (second["subscriptionStatus"], second["quarantined"], second["doubleOptIn"]) == (
        "UNSUBSCRIBED",
        True,
        "PENDING",
    )
    assert (second["bounced"], second["spamReported"]) == (True, True)
    assert (await api.get(url, headers=h.auth(key))).json()["properties"] == second["properties"]
    conn = await asyncpg.connect(DATABASE_URL)
    try:  # removing a suppression lifts the contact's own status of that reason, one at a time
        account_id = await conn.fetchval("SELECT account_id FROM contacts WHERE email = $1", to.lower())
        lifted = []
        for reason in ("UNSUBSCRIBED", "SPAM_REPORT", "BOUNCED"):
            await contacts.clear_status(conn, account_id, to, reason)
            view = (await api.get(url, headers=h.auth(key))).json()
            lifted.append((view["subscriptionStatus"], view["spamReported"], view["bounced"]))
    finally:
        await conn.close()
    assert lifted == [("NOT_SPECIFIED", True, True), ("NOT_SPECIFIED", False, True), ("NOT_SPECIFIED", False, False)]
    assert (view["quarantined"], view["doubleOptIn"]) == (True, "PENDING")
    h.assert_error_shape(
        await api.put("/mailstream/v1/contacts/nope", headers=h.auth(key), json={}), 400, "VALIDATION_ERROR"
    )


async def test_contact_properties_of_a_send_are_stored_and_custom_properties_never(api, new_account, h):
    key = new_account()
    email_id = await h.create_email(api, key)
    to = f"p-{uuid.uuid4().hex[:8]}@example.com"
    body = {
        "emailId": email_id,
        "message": {"to": to},
        "contactProperties": {"firstname": "Jane"},
        "customProperties": {"secretCoupon": "XYZZY-42"},
    }
    assert (await api.post(h.SEND, headers=h.auth(key), json=body)).status_code == 200
    contact = (await api.get(f"/mailstream/v1/contacts/{to}", headers=h.auth(key))).json()
    assert contact["properties"] == {"firstname": "Jane"}
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        leaks = [
            await conn.fetchval("SELECT count(*) FROM contacts WHERE properties::text LIKE '%XYZZY-42%'"),
            await conn.fetchval("SELECT count(*) FROM send_requests r WHERE r::text LIKE '%XYZZY-42%'"),
            await conn.fetchval(
                "SELECT count(*) FROM scheduled_sends WHERE position('XYZZY-42'::bytea in payload) > 0"
            ),
        ]
    finally:
        await conn.close()
    assert leaks == [0, 0, 0]


async def test_api_keys_are_shown_once_stored_hashed_and_revocable(api, new_account, h):
    key = new_account()
    user = await api.post(
        "/mailstream/v1/users", headers=h.auth(key), json={"email": "Ops@Shop.example", "name": "Ops"}
    )
    assert user.status_code == 201 and user.json()["email"] == "ops@shop.example"
    dup = await api.post("/mailstream/v1/users", headers=h.auth(key), json={"email": "ops@shop.example"})
    h.assert_error_shape(dup, 409, "CONFLICT")
    created = await api.post(
        "/mailstream/v1/api-keys", headers=h.auth(key), json={"name": "ci", "userId": user.json()["id"]}
    )
    assert created.status_code == 201
    new_key = created.json()["key"]
    assert new_key.startswith("ms_") and len(new_key) > 40
    listed = (await api.get("/mailstream/v1/api-keys", headers=h.auth(new_key))).json()
    assert len(listed) == 2 and all("key" not in k for k in listed) and new_key not in str(listed)
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        assert await conn.fetchval("SELECT count(*) FROM api_keys WHERE key_hash::text LIKE $1", f"%{new_key}%") == 0
    finally:
        await conn.close()
    # removing the user keeps its key working; revoking the key stops it at once
    assert (await api.delete(f"/mailstream/v1/users/{user.json()['id']}", headers=h.auth(key))).status_code == 204
    assert (await api.get(h.EMAILS, headers=h.auth(new_key))).status_code == 200
    assert (await api.delete(f"/mailstream/v1/api-keys/{created.json()['id']}", headers=h.auth(key))).status_code == 204
    h.assert_error_shape(await api.get(h.EMAILS, headers=h.auth(new_key)), 401, "INVALID_AUTHENTICATION")
    other = new_account()
    h.assert_error_shape(
        await api.delete(f"/mailstream/v1/api-keys/{listed[0]['id']}", headers=h.auth(other)), 404, "OBJECT_NOT_FOUND"
    )


async def test_stats_have_their_shape_and_are_scoped_to_the_account(api, new_account, h):
    key = new_account()
    email_id = await h.create_email(api, key)
    account = (await api.get("/mailstream/v1/stats", headers=h.auth(key))).json()
    assert account["scope"] == "account" and account["openRate"] == 0.0 and account["clickRate"] == 0.0
    email = (await api.get("/mailstream/v1/stats", headers=h.auth(key), params={"emailId": email_id})).json()
    assert (email["scope"], email["id"], email["sent"]) == ("email", str(email_id), 0)
    unknown = await api.get("/mailstream/v1/stats", headers=h.auth(key), params={"tokenId": "nope"})
    h.assert_error_shape(unknown, 404, "OBJECT_NOT_FOUND")
    token_id = (
        await api.post(
            "/marketing/v3/transactional/smtp-tokens",
            headers=h.auth(key),
            json={"createContact": False, "campaignName": "c"},
        )
    ).json()["id"]
    token = (await api.get("/mailstream/v1/stats", headers=h.auth(key), params={"tokenId": token_id})).json()
    assert (token["scope"], token["id"], token["sent"], token["openRate"]) == ("token", token_id, 0, 0.0)
    other = new_account()
    h.assert_error_shape(
        await api.get("/mailstream/v1/stats", headers=h.auth(other), params={"tokenId": token_id}),
        404,
        "OBJECT_NOT_FOUND",
    )
    h.assert_error_shape(
        await api.get("/mailstream/v1/stats", headers=h.auth(other), params={"emailId": email_id}),
        404,
        "OBJECT_NOT_FOUND",
    )
    both = await api.get("/mailstream/v1/stats", headers=h.auth(key), params={"tokenId": "a", "emailId": email_id})
    h.assert_error_shape(both, 400, "VALIDATION_ERROR")

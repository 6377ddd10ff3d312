"""The gateway's public behaviour through the whole topology: HTTP in, SMTP sink and statuses out."""

import asyncio
import email
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path

import httpx
import pytest
from sns_signing import SnsSigner

pytestmark = pytest.mark.e2e
SEND = "/marketing/v3/transactional/single-email/send"
EMAILS = "/mailstream/v1/emails"
GATEWAY = os.environ.get("MAILSTREAM_TEST_GATEWAY_URL", "http://127.0.0.1:8080")
TRACKER = "http://127.0.0.1:8090"


def auth(key):
    return {"Authorization": f"Bearer {key}"}


async def make_email(api, key, *, subscription="TRANSACTIONAL", publish=False, convert=False, html=None):
    html = html or "<p>Hi {{ contact.firstname|default('there') }}, your receipt.</p>"
    body = {
        "name": f"{subscription.lower()} e2e",
        "subject": f"{subscription} e2e",
        "fromEmail": "orders@shop.example",
        "html": html,
        "subscriptionType": subscription,
    }
    created = await api.post(EMAILS, headers=auth(key), json=body)
    assert created.status_code == 201, created.text
    email_id = created.json()["emailId"]
    if convert:
        assert (await api.post(f"{EMAILS}/{email_id}/convert-to-single-send-api", headers=auth(key))).status_code == 200
    if publish:
        assert (await api.post(f"{EMAILS}/{email_id}/publish", headers=auth(key))).status_code == 200
    return email_id


async def set_contact(api, key, address, **statuses):
    reply = await api.put(f"/mailstream/v1/contacts/{address}", headers=auth(key), json=statuses)
    assert reply.status_code == 200, reply.text


async def wait_status(api, key, status_id, within=30.0):
    deadline = time.monotonic() + within
    while True:
        view = (await api.get(f"/marketing/v3/email/send-statuses/{status_id}", headers=auth(key))).json()
        if view["status"] in ("COMPLETE", "CANCELED") or time.monotonic() > deadline:
            return view
        await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    "statuses",
    [
        pytest.param({"subscriptionStatus": "UNSUBSCRIBED"}, id="unsubscribed"),
        pytest.param({"quarantined": True}, id="quarantined"),
        pytest.param({"doubleOptIn": "PENDING"}, id="double-opt-in-pending"),
    ],
)
async def test_a_transactional_email_reaches_the_contact_whatever_its_status(
    api, new_account, sink, unique_address, statuses
):
    key = new_account("bypass")
    email_id = await make_email(api, key, convert=True)
    to = unique_address()
    await set_contact(api, key, to, properties={"firstname": "Jane"}, **statuses)
    reply = await api.post(SEND, headers=auth(key), json={"emailId": email_id, "message": {"to": to}})
    assert reply.status_code == 200 and reply.json()["status"] == "PENDING", reply.text
    (received,) = await sink.wait_for(to)
    msg = email.message_from_string(received["data"], policy=default)
    assert "Hi Jane, your receipt." in msg.get_body(("html",)).get_content()
    view = await wait_status(api, key, reply.json()["statusId"])
    assert (view["status"], view.get("sendResult")) == ("COMPLETE", "SENT"), view


@pytest.mark.parametrize(
    ("statuses", "result"),
    [
        pytest.param({"subscriptionStatus": "UNSUBSCRIBED"}, "PREVIOUSLY_UNSUBSCRIBED_PORTAL", id="unsubscribed"),
        pytest.param({"quarantined": True}, "QUARANTINED_ADDRESS", id="quarantined"),
        pytest.param({"bounced": True}, "PREVIOUSLY_BOUNCED", id="bounced"),
        pytest.param({"spamReported": True}, "PREVIOUS_SPAM", id="spam-reported"),
        pytest.param({"doubleOptIn": "PENDING"}, "EMAIL_UNCONFIRMED", id="double-opt-in-pending"),
    ],
)
async def test_a_one_off_marketing_send_is_refused_for_the_contacts_status(
    api, new_account, sink, unique_address, statuses, result
):
    key = new_account("marketing")
    email_id = await make_email(
        api, key, subscription="MARKETING", publish=True, html="<p>Sale!</p><p>{{ unsubscribe_link }}</p>"
    )
    to = unique_address()
    await set_contact(api, key, to, **statuses)
    reply = await api.post(f"{EMAILS}/{email_id}/send", headers=auth(key), json={"to": to})
    assert reply.status_code == 200
    assert (reply.json()["status"], reply.json()["sendResult"]) == ("COMPLETE", result)
    assert await sink.wait_for(to, within=2) == []


async def test_a_one_off_marketing_send_reaches_a_subscribed_contact(api, new_account, sink, unique_address):
    key = new_account("marketing")
    email_id = await make_email(
        api, key, subscription="MARKETING", publish=True, html="<p>Sale!</p><p>{{ unsubscribe_link }}</p>"
    )
    to = unique_address()
    await set_contact(api, key, to, subscriptionStatus="SUBSCRIBED", doubleOptIn="CONFIRMED")
    reply = await api.post(f"{EMAILS}/{email_id}/send", headers=auth(key), json={"to": to})
    assert reply.json()["status"] == "PENDING", reply.text
    (received,) = await sink.wait_for(to)
    assert "List-Unsubscribe" in received["data"]


async def test_a_scheduled_send_arrives_after_its_time_and_completes(api, new_account, sink, unique_address):
    key = new_account("schedule")
    email_id = await make_email(api, key)  # a draft: one-off sends take any email
    to = unique_address()
    send_at = datetime.now(UTC) + timedelta(seconds=3)
    reply = await api.post(
        f"{EMAILS}/{email_id}/send", headers=auth(key), json={"to": to, "sendAt": send_at.isoformat()}
    )
    assert reply.status_code == 200 and reply.json()["status"] == "PENDING", reply.text
    assert await sink.wait_for(to, within=1.5) == []  # not before its time
    (received,) = await sink.wait_for(to, within=20)
    arrived = datetime.fromisoformat(received["received_at"])
    assert send_at <= arrived < send_at + timedelta(seconds=5), (send_at, arrived)
    view = await wait_status(api, key, reply.json()["statusId"])
    assert (view["status"], view.get("sendResult")) == ("COMPLETE", "SENT"), view


async def test_a_canceled_scheduled_send_never_arrives(api, new_account, sink, unique_address):
    key = new_account("cancel")
    email_id = await make_email(api, key, convert=True)
    to = unique_address()
    send_at = datetime.now(UTC) + timedelta(seconds=2)
    body = {"emailId": email_id, "message": {"to": to}, "sendAt": send_at.isoformat()}
    status_id = (await api.post(SEND, headers=auth(key), json=body)).json()["statusId"]
    canceled = await api.post(f"/mailstream/v1/sends/{status_id}/cancel", headers=auth(key))
    assert canceled.status_code == 200 and canceled.json()["status"] == "CANCELED"
    assert await sink.wait_for(to, within=5) == []
    assert (await wait_status(api, key, status_id))["status"] == "CANCELED"


async def test_a_repeated_send_id_sends_one_email(api, new_account, sink, unique_address):
    key = new_account("idempotent")
    email_id = await make_email(api, key, convert=True)
    to = unique_address()
    body = {"emailId": email_id, "message": {"to": to, "sendId": f"order-{uuid.uuid4()}"}}
    replies = await asyncio.gather(*(api.post(SEND, headers=auth(key), json=body) for _ in range(10)))
    assert len({r.json()["statusId"] for r in replies}) == 1
    later = await api.post(SEND, headers=auth(key), json=body)
    assert later.json()["statusId"] == replies[0].json()["statusId"]
    await sink.wait_for(to)
    # A later send to the same recipient takes the same partitions (send requests are keyed by
    # recipient, rendered mail by sending IP): once it has arrived, a duplicate would have too
    # (give or take a batch the sender delivers in parallel: the last short poll).
    barrier = {"emailId": email_id, "message": {"to": to}, "contactProperties": {"firstname": "Barrier"}}
    assert (await api.post(SEND, headers=auth(key), json=barrier)).status_code == 200
    received = await sink.wait_for(to, count=2)
    received = await sink.wait_for(to, count=len(received) + 1, within=0.5)
    bodies = [email.message_from_string(m["data"], policy=default).get_body(("html",)).get_content() for m in received]
    assert len(received) == 2 and sum("Hi Barrier," in b for b in bodies) == 1, bodies


async def test_the_official_hubspot_client_sends_and_reads_the_result(api, new_account, sink, unique_address):
    try:
        from hubspot import Client
        from hubspot.marketing.transactional import PublicSingleSendEmail, PublicSingleSendRequestEgg
    except ImportError:
        pytest.fail("hubspot-api-client is not installed: pip install -e 'services/api-gateway[test]'")

    key = new_account("hubspot")
    email_id = await make_email(api, key, convert=True)
    to = unique_address()
    client = Client.create(access_token=key, host=GATEWAY)
    client.config["base_url"] = GATEWAY  # api_request (status polling) uses this one
    egg = PublicSingleSendRequestEgg(
        email_id=email_id,
        message=PublicSingleSendEmail(to=to, send_id=f"hs-{uuid.uuid4()}"),
        contact_properties={"firstname": "Ada"},
        custom_properties={"order": "1"},
    )
    api_client = client.marketing.transactional.single_send_api
    view = await asyncio.to_thread(api_client.send_email, public_single_send_request_egg=egg)
    assert view.status == "PENDING" and view.status_id and view.requested_at is not None
    (received,) = await sink.wait_for(to)
    msg = email.message_from_string(received["data"], policy=default)
    assert "Hi Ada, your receipt." in msg.get_body(("html",)).get_content()
    deadline = time.monotonic() + 30
    while True:
        polled = await asyncio.to_thread(
            client.api_request, {"method": "GET", "path": f"/marketing/v3/email/send-statuses/{view.status_id}"}
        )
        body = polled.json()
        if body["status"] == "COMPLETE" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert (polled.status_code, body["statusId"], body["sendResult"]) == (200, view.status_id, "SENT")


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(new_account, tmp_path):
    key = new_account("schemathesis")
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        pytest.fail(f"schemathesis is not installed ({st} missing): pip install -e 'services/api-gateway[test]'")
    proc = await asyncio.create_subprocess_exec(
        str(st),
        "run",
        f"{GATEWAY}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance",
        "--max-examples",
        "15",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 600)
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report[-6000:]
    assert "Tested: " in report and " passed" in report


async def test_after_a_spam_report_the_next_send_completes_with_previous_spam(api, new_account, sink, unique_address):
    key = new_account("spam")
    email_id = await make_email(api, key, convert=True)
    to = unique_address()
    await set_contact(api, key, to, properties={"firstname": "Sam"})  # its view lists the tracker's suppressions
    first = await api.post(SEND, headers=auth(key), json={"emailId": email_id, "message": {"to": to}})
    assert first.json()["status"] == "PENDING"
    (received,) = await sink.wait_for(to)
    message_id = email.message_from_string(received["data"], policy=default)["X-Mailstream-ID"]
    assert message_id, received["data"][:500]
    # the complaint must find the message: wait until the tracker counted it sent (it may lag the sink)
    deadline = time.monotonic() + 20
    while (await api.get("/mailstream/v1/stats", headers=auth(key), params={"emailId": email_id})).json()["sent"] < 1:
        assert time.monotonic() < deadline, "the tracker never recorded the rendered message"
        await asyncio.sleep(0.2)
    complaint = {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": to}], "complaintFeedbackType": "abuse"},
        "mail": {"headers": [{"name": "X-Mailstream-ID", "value": message_id}], "commonHeaders": {}},
    }
    async with SnsSigner() as sns, httpx.AsyncClient(base_url=TRACKER, timeout=10) as tracker:
        reply = await tracker.post("/mailstream/v1/feedback/ses", json=sns.notification(complaint))
    assert reply.status_code == 202 and reply.json()["spamReports"] == 1, reply.text
    deadline = time.monotonic() + 20
    while "SPAM_REPORT" not in (await api.get(f"/mailstream/v1/contacts/{to}", headers=auth(key))).json().get(
        "suppressions", []
    ):
        assert time.monotonic() < deadline, "the tracker never recorded the spam report's suppression"
        await asyncio.sleep(0.2)
    second = await api.post(SEND, headers=auth(key), json={"emailId": email_id, "message": {"to": to}})
    assert (second.json()["status"], second.json()["sendResult"]) == ("COMPLETE", "PREVIOUS_SPAM")
    # no later send can reach this recipient to mark the end: watch for a second copy for 2 s
    assert len(await sink.wait_for(to, count=2, within=2)) == 1


async def test_stats_count_a_delivered_send_for_its_email_and_account(api, new_account, sink, unique_address):
    key = new_account("stats")
    email_id = await make_email(api, key, convert=True)
    to = unique_address()
    await api.post(SEND, headers=auth(key), json={"emailId": email_id, "message": {"to": to}})
    await sink.wait_for(to)
    deadline = time.monotonic() + 30
    while True:
        stats = (await api.get("/mailstream/v1/stats", headers=auth(key), params={"emailId": email_id})).json()
        if stats["delivered"] >= 1 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert (stats["scope"], stats["id"], stats["sent"], stats["delivered"]) == ("email", str(email_id), 1, 1), stats
    assert stats["openRate"] == round(stats["opensUniqueHuman"] / stats["delivered"], 4)
    assert stats["clickRate"] == round(stats["clicksUniqueHuman"] / stats["delivered"], 4)
    account = (await api.get("/mailstream/v1/stats", headers=auth(key))).json()
    assert (account["scope"], account["delivered"]) == ("account", 1)
    stranger = await api.get(
        "/mailstream/v1/stats", headers=auth(new_account("stranger")), params={"emailId": email_id}
    )
    assert stranger.status_code == 404 and "delivered" not in stranger.text

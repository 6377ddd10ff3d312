"""The suppressions API against the real stack: a MANUAL suppression blocks transactional mail, an
UNSUBSCRIBED one marketing mail only, a removal lets mail through again; the list's filters, search
and CSV export; a bulk add and a bulk clear that needs its confirmation; a spam report's removal
kept in the history; and another account sees none of it. The tracker applies each change
moments after the 202: the tests poll for it."""

import asyncio
import csv
import io
import time
import uuid

import pytest

pytestmark = pytest.mark.e2e
SEND = "/marketing/v3/transactional/single-email/send"
EMAILS = "/mailstream/v1/emails"
SUPPRESSIONS = "/mailstream/v1/suppressions"


def auth(key):
    return {"Authorization": f"Bearer {key}"}


async def make_email(api, key, subscription) -> int:
    html = "<p>Hello.</p>" + ("<p>{{ unsubscribe_link }}</p>" if subscription == "MARKETING" else "")
    body = {"name": subscription, "subject": subscription, "fromEmail": "orders@shop.example", "html": html}
    created = await api.post(EMAILS, headers=auth(key), json={**body, "subscriptionType": subscription})
    assert created.status_code == 201, created.text
    email_id = created.json()["emailId"]
    step = "convert-to-single-send-api" if subscription == "TRANSACTIONAL" else "publish"
    assert (await api.post(f"{EMAILS}/{email_id}/{step}", headers=auth(key))).status_code == 200
    return email_id


async def send_transactional(api, key, email_id, to) -> dict:
    reply = await api.post(SEND, headers=auth(key), json={"emailId": email_id, "message": {"to": to}})
    assert reply.status_code == 200, reply.text
    return reply.json()


async def send_marketing(api, key, email_id, to) -> dict:
    reply = await api.post(f"{EMAILS}/{email_id}/send", headers=auth(key), json={"to": to})
    assert reply.status_code == 200, reply.text
    return reply.json()


async def listed(api, key, *, until, within=20.0, **params) -> list[dict]:
    """The list's results (one page) once `until(results)` holds."""
    deadline = time.monotonic() + within
    while True:
        page = await api.get(SUPPRESSIONS, headers=auth(key), params=params)
        assert page.status_code == 200, page.text
        if until(page.json()["results"]):
            return page.json()["results"]
        assert time.monotonic() < deadline, f"the list did not change as expected: {page.json()}"
        await asyncio.sleep(0.2)


async def shown(api, key, address, *, until, within=20.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        view = (await api.get(f"{SUPPRESSIONS}/{address}", headers=auth(key))).json()
        if until(view):
            return view
        assert time.monotonic() < deadline, f"the suppressions of {address} did not change as expected: {view}"
        await asyncio.sleep(0.2)


def addresses(results) -> set[str]:
    return {r["address"] for r in results}


async def test_added_suppressions_stop_mail_by_their_kind_are_listed_exported_and_removed(
    api, new_account, sink, unique_address
):
    key, other = new_account("suppressions"), new_account("suppressions-other")
    transactional = await make_email(api, key, "TRANSACTIONAL")
    marketing = await make_email(api, key, "MARKETING")
    domain = f"s{uuid.uuid4().hex[:10]}.example"
    blocked, unsubscribed = unique_address(domain), unique_address(domain)

    added = await api.post(SUPPRESSIONS, headers=auth(key), json={"email": blocked, "note": "fraud ring"})
    assert added.status_code == 202, added.text
    assert (added.json()["action"], added.json()["suppression"]) == ("ADD", "MANUAL")  # the default reason
    unsub = {"email": unsubscribed, "reason": "UNSUBSCRIBED"}
    assert (await api.post(SUPPRESSIONS, headers=auth(key), json=unsub)).status_code == 202
    bad = await api.post(SUPPRESSIONS, headers=auth(key), json={"email": blocked, "reason": "HARD"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["in"] == "reason"

    both = await listed(api, key, q=f"@{domain}", until=lambda r: len(r) == 2)
    assert {(r["address"], r["reason"], r["detail"]) for r in both} == {
        (blocked, "MANUAL", "fraud ring"),
        (unsubscribed, "UNSUBSCRIBED", None),
    }
    assert all(r["createdAt"] and r["messageId"] is None for r in both)
    assert addresses(await listed(api, key, q=f"@{domain}", reason="MANUAL", until=bool)) == {blocked}
    assert addresses(await listed(api, key, q=unsubscribed[:12], until=bool)) == {unsubscribed}
    assert await listed(api, key, q=f"@{domain}", since="2999-01-01T00:00:00Z", until=lambda r: True) == []
    exported = await api.get(f"{SUPPRESSIONS}/export.csv", headers=auth(key), params={"q": f"@{domain}"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {(r["address"], r["reason"]) for r in rows} == {(blocked, "MANUAL"), (unsubscribed, "UNSUBSCRIBED")}

    # another account sees none of it
    assert (await api.get(SUPPRESSIONS, headers=auth(other), params={"q": f"@{domain}"})).json() == {"results": []}
    assert (await api.get(f"{SUPPRESSIONS}/{blocked}", headers=auth(other))).status_code == 404
    foreign = await api.post(
        f"{SUPPRESSIONS}/{blocked}/remove", headers=auth(other), json={"reason": "MANUAL", "note": "x"}
    )
    assert foreign.status_code == 404 and foreign.json()["category"] == "OBJECT_NOT_FOUND"
    other_csv = await api.get(f"{SUPPRESSIONS}/export.csv", headers=auth(other), params={"q": f"@{domain}"})
    assert other_csv.text.splitlines() == ["address,reason,createdAt,messageId,detail"]

    # MANUAL: no mail of either kind; UNSUBSCRIBED: no marketing mail, transactional still sent
    refused = await send_transactional(api, key, transactional, blocked)
    assert (refused["status"], refused["sendResult"]) == ("COMPLETE", "BLOCKED_ADDRESS"), refused
    not_marketed = await send_marketing(api, key, marketing, unsubscribed)
    assert (not_marketed["status"], not_marketed["sendResult"]) == ("COMPLETE", "PREVIOUSLY_UNSUBSCRIBED_PORTAL")
    assert (await send_transactional(api, key, transactional, unsubscribed))["status"] == "PENDING"
    assert len(await sink.wait_for(unsubscribed)) == 1

    view = (await api.get(f"{SUPPRESSIONS}/{blocked}", headers=auth(key))).json()
    assert view["suppressions"] == ["MANUAL"] and view["current"][0]["detail"] == "fraud ring"
    (entry,) = view["history"]
    assert (entry["action"], entry["suppression"], entry["reason"]) == ("ADD", "MANUAL", "fraud ring")
    assert entry["causedBy"]["eventId"] == added.json()["eventId"] and entry["requestedBy"].startswith("api-key:")

    # removed: both kinds reach the addresses again
    for address, reason in ((blocked, "MANUAL"), (unsubscribed, "UNSUBSCRIBED")):
        body = {"reason": reason, "note": "cleared by support"}
        removed = await api.post(f"{SUPPRESSIONS}/{address}/remove", headers=auth(key), json=body)
        assert removed.status_code == 202, removed.text
    await listed(api, key, q=f"@{domain}", until=lambda r: r == [])
    assert (await send_transactional(api, key, transactional, blocked))["status"] == "PENDING"
    assert (await send_marketing(api, key, marketing, unsubscribed))["status"] == "PENDING"
    assert len(await sink.wait_for(blocked)) == 1 and len(await sink.wait_for(unsubscribed, count=2)) == 2
    history = (await api.get(f"{SUPPRESSIONS}/{blocked}", headers=auth(key))).json()["history"]
    assert [(e["action"], e["reason"]) for e in history] == [("ADD", "fraud ring"), ("REMOVE", "cleared by support")]


async def test_a_bulk_add_is_paged_and_a_bulk_clear_needs_the_accounts_confirmation(api, new_account, unique_address):
    key = new_account("suppressions-bulk")
    domain = f"b{uuid.uuid4().hex[:10]}.example"
    many = sorted(unique_address(domain) for _ in range(50))
    spam = unique_address(domain)
    inputs = [{"email": a} for a in many] + [{"email": spam, "reason": "SPAM_REPORT", "note": "complained"}]
    added = await api.post(f"{SUPPRESSIONS}/batch/add", headers=auth(key), json={"inputs": inputs})
    assert added.status_code == 202 and added.json()["requested"] == 51, added.text
    await listed(api, key, q=f"@{domain}", limit=100, until=lambda r: len(r) == 51)

    seen, params = [], {"q": f"@{domain}", "reason": "MANUAL", "limit": 20}
    while True:
        page = (await api.get(SUPPRESSIONS, headers=auth(key), params=params)).json()
        seen += [r["address"] for r in page["results"]]
        if "paging" not in page:
            break
        params["after"] = page["paging"]["next"]["after"]
    assert seen == many  # in address order, three pages

    # a spam report's removal is kept with its note and who asked
    lift = {"reason": "SPAM_REPORT", "note": "asked to be mailed again"}
    assert (await api.post(f"{SUPPRESSIONS}/{spam}/remove", headers=auth(key), json=lift)).status_code == 202
    view = await shown(api, key, spam, until=lambda v: v["suppressions"] == [])
    assert [(e["action"], e["suppression"], e["reason"]) for e in view["history"]] == [
        ("ADD", "SPAM_REPORT", "complained"),
        ("REMOVE", "SPAM_REPORT", "asked to be mailed again"),
    ]
    assert view["history"][1]["changed"] == ["SPAM_REPORT"] and view["history"][1]["requestedBy"].startswith("api-key:")

    clear = {"all": True, "reason": "MANUAL", "note": "new list"}
    unconfirmed = await api.post(f"{SUPPRESSIONS}/batch/remove", headers=auth(key), json=clear)
    assert unconfirmed.status_code == 400 and unconfirmed.json()["errors"][0]["in"] == "confirm"
    (account_id,) = unconfirmed.json()["context"]["confirm"]
    wrong = {**clear, "confirm": str(int(account_id) + 1)}
    assert (await api.post(f"{SUPPRESSIONS}/batch/remove", headers=auth(key), json=wrong)).status_code == 400
    assert len(await listed(api, key, q=f"@{domain}", limit=100, until=lambda r: True)) == 50  # nothing removed
    cleared = await api.post(f"{SUPPRESSIONS}/batch/remove", headers=auth(key), json={**clear, "confirm": account_id})
    assert cleared.status_code == 202 and cleared.json()["requested"] == 50, cleared.text
    await listed(api, key, q=f"@{domain}", limit=100, until=lambda r: r == [])

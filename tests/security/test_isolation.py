"""Isolation between accounts: every gateway operation with an object id (enumerated from
/openapi.json) answers another account's key with 404 and none of the object's data, and changes
nothing; object ids in queries and bodies likewise; SMTP tokens cannot send as another account's
domain."""

from __future__ import annotations

import asyncio
import email
import re
import time
import uuid
from email.policy import default
from email.utils import getaddresses

import pytest

pytestmark = pytest.mark.e2e

# Request bodies that pass validation, so that a 404 is about the object and not the body.
BODIES = {
    ("post", "/mailstream/v1/emails/{email_id}/send"): {"to": "someone@example.com"},
    ("patch", "/mailstream/v1/emails/{email_id}"): {"subject": "taken over"},
    ("put", "/mailstream/v1/contacts/{email}"): {"properties": {"plan": "taken over"}},
    ("post", "/mailstream/v1/suppressions/{email}/unbounce"): {"reason": "taken over"},
    ("post", "/mailstream/v1/suppressions/{email}/remove"): {"reason": "BOUNCED", "note": "taken over"},
    ("patch", "/mailstream/v1/triggers/{trigger_id}"): {"name": "taken over"},
    ("patch", "/mailstream/v1/webhooks/{webhook_id}"): {"url": "http://127.0.0.1:9/taken-over"},
    ("post", "/mailstream/v1/webhooks/{webhook_id}/replay"): {"since": "2026-01-01T00:00:00Z"},
    ("patch", "/v3/user/scheduled_sends/{batch_id}"): {"status": "cancel"},
}
# Upserts keyed by a natural key: another account writing the same key writes its own object
# (called last, so the reads before see the owner's object only).
UPSERTS = {("put", "/mailstream/v1/contacts/{email}")}
# Send endpoints answer a send status, as HubSpot's single send does: another account's email id gets
# the same COMPLETE/MISSING_CONTENT answer as an id that does not exist (no oracle, nothing sent).
SENDS = {("post", "/mailstream/v1/emails/{email_id}/send")}
# SendGrid's API (/v3/) answers in SendGrid's shape: another account's id gets exactly the answer of
# an id that does not exist (400 "invalid batch id" or 404 "batch id not found", as SendGrid's).
UNKNOWN_BATCH = "NoSuchBatch0000000000000000000000"


async def owner_objects(h, api, account, raw_sink) -> tuple[str, dict[str, str], list[str]]:
    """An account with one object of every kind: (its key, path parameter -> id, its secret strings)."""
    key = account("sec-owner")
    marker = f"owner-secret-{uuid.uuid4().hex[:10]}"
    email_id, reply = await h.create_email(api, key, subject=f"Subject {marker}", name=f"Name {marker}")
    assert email_id, reply.text
    contact = h.unique()
    put = await api.put(
        f"/mailstream/v1/contacts/{contact}", headers=h.auth(key), json={"properties": {"plan": marker}}
    )
    assert put.status_code in (200, 201), put.text
    sent = await api.post(h.SEND, headers=h.auth(key), json={"emailId": email_id, "message": {"to": contact}})
    assert sent.status_code == 200, sent.text
    user_email = f"user-{marker}@shop.example"
    user = await api.post("/mailstream/v1/users", headers=h.auth(key), json={"email": user_email, "name": marker})
    assert user.status_code == 201, user.text
    api_key = await api.post("/mailstream/v1/api-keys", headers=h.auth(key), json={"name": marker})
    assert api_key.status_code == 201, api_key.text
    token = await api.post(h.TOKENS, headers=h.auth(key), json={"createContact": False, "campaignName": marker})
    assert token.status_code == 201, token.text
    domain = f"owner-{uuid.uuid4().hex[:10]}.example"
    added = await api.post("/mailstream/v1/sending-domains", headers=h.auth(key), json={"domain": domain})
    assert added.status_code == 201, added.text
    event = None
    for _ in range(150):  # the tracker records the send's first email event within moments
        found = await api.get("/email/public/v1/events", headers=h.auth(key), params={"recipient": contact})
        if found.status_code == 200 and found.json()["events"]:
            event = found.json()["events"][-1]
            break
        await asyncio.sleep(0.2)
    assert event is not None, "no email event for the owner's send"
    bounced = await api.put(f"/mailstream/v1/contacts/{contact}", headers=h.auth(key), json={"bounced": True})
    assert bounced.status_code == 200, bounced.text  # so that the owner has a bounce another key must not lift
    later = {"emailId": email_id, "audience": {"addresses": [contact]}, "sendAt": "2099-01-01T00:00:00Z"}
    one_off = await api.post("/mailstream/v1/one-off-sends", headers=h.auth(key), json=later)
    assert one_off.status_code == 201, one_off.text
    draft = {"name": f"Receipt {marker}", "subject": "Receipt", "fromEmail": "orders@shop.example", "html": "<p>x</p>"}
    created = await api.post(h.EMAILS, headers=h.auth(key), json=draft)
    assert created.status_code == 201, created.text
    automated = created.json()["emailId"]
    saved = await api.post(f"{h.EMAILS}/{automated}/save-for-automation", headers=h.auth(key))
    assert saved.status_code == 200, saved.text
    rule = {
        "name": f"Rule {marker}",
        "sourceTopic": f"iso-orders-{uuid.uuid4().hex[:8]}",
        "recordFormat": "JSON",
        "emailId": automated,
        "recipientField": "email",
        "sendIdTemplate": "order-{{ order_id }}",
        "enabled": False,
    }
    trigger = await api.post("/mailstream/v1/triggers", headers=h.auth(key), json=rule)
    assert trigger.status_code == 201, trigger.text
    webhook = await api.post(
        "/mailstream/v1/webhooks", headers=h.auth(key), json={"url": "http://127.0.0.1:9/hook", "description": marker}
    )
    assert webhook.status_code == 201, webhook.text
    batch = await api.post("/v3/mail/batch", headers=h.auth(key))
    assert batch.status_code == 201, batch.text
    batch_id = batch.json()["batch_id"]
    pause = {"batch_id": batch_id, "status": "pause"}
    paused = await api.post("/v3/user/scheduled_sends", headers=h.auth(key), json=pause)
    assert paused.status_code == 201, paused.text
    ids = {
        "batch_id": batch_id,
        "webhook_id": webhook.json()["id"],
        "trigger_id": str(trigger.json()["id"]),
        "one_off_send_id": one_off.json()["id"],
        "email_id": str(email_id),
        "status_id": sent.json()["statusId"],
        "email": contact,
        "contact_id": contact,
        "created": str(event["created"]),
        "event_id": event["id"],
        "user_id": str(user.json()["id"]),
        "key_id": str(api_key.json()["id"]),
        "token_id": token.json()["id"],
        "domain": domain,
    }
    secrets = [marker, user_email, api_key.json()["key"], token.json()["password"], webhook.json()["secret"]]
    return key, ids, secrets


async def test_every_operation_with_an_object_id_is_404_for_another_account(h, api, account, raw_sink, secrets):
    owner, ids, owner_secrets = await owner_objects(h, api, account, raw_sink)
    for s in owner_secrets[2:]:
        secrets.add("an owner's secret", s)
    other = account("sec-other")
    spec = (await api.get("/openapi.json")).json()
    before = {
        "email": (await api.get(f"{h.EMAILS}/{ids['email_id']}", headers=h.auth(owner))).json(),
        "contact": (await api.get(f"/mailstream/v1/contacts/{ids['email']}", headers=h.auth(owner))).json(),
        "token": (await api.get(f"{h.TOKENS}/{ids['token_id']}", headers=h.auth(owner))).json(),
        "status": (
            await api.get(f"/marketing/v3/email/send-statuses/{ids['status_id']}", headers=h.auth(owner))
        ).json(),
    }

    operations, unknown, leaks, wrong = [], [], [], []
    calls = [
        (path, method, op)
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    calls.sort(key=lambda c: (c[1], c[0]) in UPSERTS)
    for path, method, op in calls:
        if True:
            params = [p["name"] for p in op.get("parameters", []) if p.get("in") == "path"]
            if not params:
                continue
            if any(p not in ids for p in params):
                unknown.append((method, path, params))
                continue
            url = path.format(**{p: ids[p] for p in params})
            body = BODIES.get((method, path))
            if op.get("requestBody", {}).get("required") and body is None:
                unknown.append((method, path, "no body"))
                continue
            reply = await api.request(method.upper(), url, headers=h.auth(other), json=body)
            operations.append((method.upper(), path, reply.status_code))
            if any(s in reply.text for s in owner_secrets):
                leaks.append((method, path, reply.status_code))
            if (method, path) in UPSERTS:
                if reply.status_code >= 500:
                    wrong.append((method, path, reply.status_code))
            elif (method, path) in SENDS:
                unknown_id = path.format(**{p: "999999999999" if p == "email_id" else ids[p] for p in params})
                baseline = await api.request(method.upper(), unknown_id, headers=h.auth(other), json=body)
                view, base = reply.json(), baseline.json()
                if (
                    reply.status_code != baseline.status_code
                    or (view.get("sendResult"), view.get("message"))
                    != (
                        base.get("sendResult"),
                        base.get("message"),
                    )
                    or view.get("sendResult") != "MISSING_CONTENT"
                ):
                    wrong.append((method, path, reply.status_code, reply.text[:200]))
            elif path.startswith("/v3/"):
                unknown_id = path.format(**{p: UNKNOWN_BATCH if p == "batch_id" else ids[p] for p in params})
                baseline = await api.request(method.upper(), unknown_id, headers=h.auth(other), json=body)
                if (
                    (reply.status_code, reply.json()) != (baseline.status_code, baseline.json())
                    or reply.status_code not in (400, 404)
                    or ids["batch_id"] in reply.text
                ):
                    wrong.append((method, path, reply.status_code, reply.text[:200]))
            elif reply.status_code != 404 or reply.json().get("category") != "OBJECT_NOT_FOUND":
                wrong.append((method, path, reply.status_code, reply.text[:200]))
    assert unknown == [], f"operations this test cannot call yet (add their ids/bodies): {unknown}"

    # object ids outside the path: queries, bodies and lists
    other_h = h.auth(other)
    extra = {
        "GET stats?emailId": await api.get(
            "/mailstream/v1/stats", params={"emailId": ids["email_id"]}, headers=other_h
        ),
        "GET stats?tokenId": await api.get(
            "/mailstream/v1/stats", params={"tokenId": ids["token_id"]}, headers=other_h
        ),
        "POST api-keys userId": await api.post(
            "/mailstream/v1/api-keys", headers=other_h, json={"name": "x", "userId": int(ids["user_id"])}
        ),
        "POST scheduled_sends batch_id": await api.post(
            "/v3/user/scheduled_sends", headers=other_h, json={"batch_id": ids["batch_id"], "status": "cancel"}
        ),
        "POST /v3/mail/send batch_id": await api.post(
            "/v3/mail/send",
            headers=other_h,
            json={
                "personalizations": [{"to": [{"email": h.unique()}]}],
                "from": {"email": "orders@shop.example"},
                "subject": "s",
                "content": [{"type": "text/plain", "value": "x"}],
                "send_at": int(time.time()) + 3600,
                "batch_id": ids["batch_id"],
            },
        ),
    }
    for name, reply in extra.items():
        operations.append((name, "", reply.status_code))
        if any(s in reply.text for s in owner_secrets):
            leaks.append((name, reply.status_code))
        if reply.status_code not in (400, 404):
            wrong.append((name, reply.status_code, reply.text[:200]))
    send = await api.post(
        h.SEND, headers=other_h, json={"emailId": int(ids["email_id"]), "message": {"to": h.unique()}}
    )
    operations.append(("POST single-send emailId", "", send.status_code))
    if send.status_code == 200 and send.json().get("sendResult") != "MISSING_CONTENT":
        wrong.append(("single-send of another account's email", send.json()))
    lists = {
        "emails": ("/mailstream/v1/emails", {}),
        "users": ("/mailstream/v1/users", {}),
        "api-keys": ("/mailstream/v1/api-keys", {}),
        "smtp-tokens": (h.TOKENS, {}),
        "smtp-tokens?campaignName": (h.TOKENS, {"campaignName": owner_secrets[0]}),
        "stats": ("/mailstream/v1/stats", {}),
        "sending-domains": ("/mailstream/v1/sending-domains", {}),
        "scheduled_sends": ("/v3/user/scheduled_sends", {}),
    }
    for name, (path, params) in lists.items():
        reply = await api.get(path, params=params, headers=other_h)
        operations.append((f"GET {name}", "", reply.status_code))
        if any(s in reply.text for s in owner_secrets) or any(
            f'"{v}"' in reply.text
            for k, v in ids.items()
            if k in ("token_id", "status_id", "email", "domain", "batch_id")
        ):
            leaks.append((f"list {name}", reply.status_code))

    # nothing changed for the owner
    after = {
        "email": (await api.get(f"{h.EMAILS}/{ids['email_id']}", headers=h.auth(owner))).json(),
        "contact": (await api.get(f"/mailstream/v1/contacts/{ids['email']}", headers=h.auth(owner))).json(),
        "token": (await api.get(f"{h.TOKENS}/{ids['token_id']}", headers=h.auth(owner))).json(),
        "status": (
            await api.get(f"/marketing/v3/email/send-statuses/{ids['status_id']}", headers=h.auth(owner))
        ).json(),
    }
    users = (await api.get("/mailstream/v1/users", headers=h.auth(owner))).json()
    keys = (await api.get("/mailstream/v1/api-keys", headers=h.auth(owner))).json()
    changed = [k for k in ("email", "contact", "token") if before[k] != after[k]]
    if (await api.get(f"/mailstream/v1/sending-domains/{ids['domain']}", headers=h.auth(owner))).status_code != 200:
        changed.append("sending domain deleted")
    if before["status"].get("status") != "CANCELED" and after["status"].get("status") == "CANCELED":
        changed.append("status canceled")
    if ids["user_id"] not in re.findall(r'"id":\s*(\d+)', str(users).replace("'", '"')):
        changed.append("user deleted")
    owner_batch = await api.get(f"/v3/user/scheduled_sends/{ids['batch_id']}", headers=h.auth(owner))
    if owner_batch.status_code != 200 or owner_batch.json() != [{"batch_id": ids["batch_id"], "status": "pause"}]:
        changed.append(f"batch status changed: {owner_batch.status_code} {owner_batch.text[:100]}")
    if ids["key_id"] not in re.findall(r'"id":\s*"?(\w+)', str(keys).replace("'", '"')):
        changed.append("api key deleted")

    with_ids = sum(1 for o in operations if o[1])
    print(
        f"Isolation (HTTP): {with_ids} operations with a path id (all of /openapi.json) + "
        f"{len(operations) - with_ids} id-in-query/body/list checks with another account's key: "
        f"{sum(1 for o in operations if o[2] == 404)} x 404 (SendGrid's /v3/ batch routes: the answer of an unknown "
        f"batch id; the one-off send: 200 MISSING_CONTENT as for an "
        f"unknown id; the contact upsert writes the other account's own contact), {len(wrong)} wrong answers, "
        f"{len(leaks)} leaks, "
        f"{len(changed)} owner objects changed"
    )
    print("  ", ", ".join(f"{m} {p}={c}" for m, p, c in operations))
    assert (wrong, leaks, changed) == ([], [], [])


async def test_an_smtp_token_cannot_send_as_another_accounts_domain(h, smtp_token, raw_sink):
    mine, theirs = await smtp_token("sec-iso-a"), await smtp_token("sec-iso-b")
    source = h.client_address()
    victim = theirs.domain
    froms = {
        "their address": f"From: <ceo@{victim}>",
        "their address, my name": f'From: "orders@{mine.domain}" <ceo@{victim}>',
        "upper case": f"From: <CEO@{victim.upper()}>",
        "trailing dot": f"From: <ceo@{victim}.>",
        "route syntax": f"From: <@{mine.domain}:ceo@{victim}>",
        "comment": f"From: ceo@{victim} (orders@{mine.domain})",
        "encoded word": f"From: =?utf-8?q?orders=40{mine.domain}?= <ceo@{victim}>",
        "group": f"From: team: ceo@{victim};",
        "two headers": f"From: <orders@{mine.domain}>\r\nFrom: <ceo@{victim}>",
        "folded": f"From: Shop\r\n <ceo@{victim}>",
        "parser confusion": f"From: ceo@{victim}<orders@{mine.domain}>",
        "parser confusion 2": f"From: <ceo@{victim}>orders@{mine.domain}",
        "quoted local part": f'From: "ceo@{victim}"@{mine.domain}',
    }

    def submit(from_line: str, rcpt: str) -> tuple[int, str]:
        raw = f"{from_line}\r\nTo: {rcpt}\r\nSubject: spoof\r\n\r\nbody\r\n".encode()
        with h.RawSmtp(h.SMTP_PORT, source=source) as s:
            s.session(mine)
            s.cmd(f"MAIL FROM:<bounce@{mine.domain}>")
            assert s.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
            return s.data(raw)

    results = {}
    for name, line in froms.items():
        rcpt = h.unique()
        results[name] = (await asyncio.to_thread(h.retrying, submit, line, rcpt), rcpt)
    # the same token with its own domain works
    own = h.unique()
    code, _ = await asyncio.to_thread(h.retrying, submit, f"From: <orders@{mine.domain}>", own)
    assert code == 250 and len(await raw_sink.wait(own)) == 1

    await asyncio.sleep(2)  # a refused message that got through anyway would be at the sink by now (own was)
    spoofed, dropped = [], []
    for name, ((code, text), rcpt) in results.items():
        got = await raw_sink.wait(rcpt, within=30 if code == 250 else 0)
        if code == 250 and not got:
            dropped.append((name, await h.send_result(text)))
        for raw in got:
            parsed = email.message_from_bytes(raw, policy=default)
            domains = {a.domain.lower().rstrip(".") for v in parsed.get_all("From", []) for a in v.addresses}
            # and as the older parser reads it (a receiving MUA may use either)
            legacy = email.message_from_bytes(raw)
            domains |= {a.rpartition("@")[2].lower().rstrip(".") for _, a in getaddresses(legacy.get_all("From", []))}
            if victim in domains:
                spoofed.append((name, code, str(parsed["From"])[:200]))
    refused = sum(1 for (code, _), _ in results.values() if code == 550)
    print(
        f"Isolation (SMTP From): {len(froms)} From forms naming another account's domain: {refused} refused 550, "
        f"{len(froms) - refused} accepted ({len(dropped)} of them then dropped: {dropped}), "
        f"{len(spoofed)} delivered with the other domain in From"
    )
    print("  ", ", ".join(f"{n}={c}" for n, ((c, _), _) in results.items()))
    assert spoofed == [], spoofed
    assert all(code == 550 for (code, _), _ in results.values() if code != 250)


async def test_a_quoted_local_part_from_is_refused_at_data_or_delivered(h, smtp_token, raw_sink):
    token = await smtp_token("sec-iso-quoted")
    rcpt = h.unique()
    raw = f'From: "ceo@elsewhere.example"@{token.domain}\r\nTo: {rcpt}\r\nSubject: q\r\n\r\nbody\r\n'.encode()

    def submit() -> tuple[int, str]:
        with h.RawSmtp(h.SMTP_PORT, source=h.client_address()) as s:
            s.session(token)
            s.cmd(f"MAIL FROM:<bounce@{token.domain}>")
            assert s.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
            return s.data(raw)

    code, text = await asyncio.to_thread(h.retrying, submit)
    result = await h.send_result(text) if code == 250 else None
    print(f"SMTP From with a quoted local part: DATA {code}, then {result}")
    assert code != 250 or result == "SENT", (code, result)

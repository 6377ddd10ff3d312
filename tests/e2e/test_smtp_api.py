"""The SMTP API end to end: tokens over HTTP (HubSpot contract), submission over SMTP with real
clients (swaks, smtplib) to the running gateway, delivery at the sink with tracking, statistics."""

from __future__ import annotations

import asyncio
import base64
import email
import os
import random
import re
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTP, default

import asyncpg
import httpx
import pytest

from mailstream.core.settings import LinkSettings

pytestmark = pytest.mark.e2e

SETTINGS = LinkSettings.from_env()
SMTP_PORT = int(os.environ.get("MAILSTREAM_TEST_SMTP_PORT", "2587"))
TOKENS = "/marketing/v3/transactional/smtp-tokens"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE  # the development server's certificate is self-signed


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def client_address() -> str:
    """A loopback address of its own, so that failed-AUTH throttling of other runs does not interfere."""
    return f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}.{random.randrange(1, 250)}"


async def db(query: str, *args):
    conn = await asyncpg.connect(SETTINGS.database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


class Token:
    def __init__(self, key: str, view: dict, account_id: int, domain: str) -> None:
        self.key, self.view, self.account_id, self.domain = key, view, account_id, domain
        self.id, self.password = view["id"], view["password"]


@pytest.fixture
async def token(api, new_account) -> Token:
    """A new account with one sending domain (added through the API, not verified) and one token."""
    key = new_account("smtp")
    created = await api.post(TOKENS, headers=auth(key), json={"createContact": True, "campaignName": "Receipts"})
    assert created.status_code == 201, created.text
    view = created.json()
    account_id = (await db("SELECT account_id FROM smtp_tokens WHERE id = $1", view["id"]))[0]["account_id"]
    domain = f"shop-{uuid.uuid4().hex[:10]}.example"
    added = await api.post("/mailstream/v1/sending-domains", headers=auth(key), json={"domain": domain})
    assert added.status_code == 201, added.text
    return Token(key, view, account_id, domain)


def receipt(sender: str, to: list[str], order: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Shop <{sender}>"
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"Receipt for order {order}"
    msg["Message-ID"] = f"<order-{order}@shop.example>"
    msg["X-Order-Id"] = order
    msg.set_content(f"Order {order}: https://shop.example/orders/{order}")
    msg.add_alternative(f'<p>Order <a href="https://shop.example/orders/{order}">{order}</a> ships today.</p>', "html")
    return msg


def submit(token: Token, msg: EmailMessage, *, password: str | None = None, source: str = "127.0.0.1"):
    """smtplib: STARTTLS, AUTH, one message. Returns the DATA reply (code, text)."""
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30, source_address=(source, 0)) as smtp:
        smtp.starttls(context=TLS)
        smtp.login(token.id, password or token.password)
        smtp.mail(msg["From"].addresses[0].addr_spec)
        for address in msg["To"].addresses:
            code, text = smtp.rcpt(address.addr_spec)
            assert code == 250, text
        code, text = smtp.data(msg.as_bytes(policy=SMTP))
        return code, text.decode()


def html_part(raw: str) -> str:
    message = email.message_from_string(raw, policy=default)
    body = message.get_body(("html",))
    return body.get_content() if body is not None else ""


# --- the tokens API -----------------------------------------------------------------------------------


async def test_tokens_api_follows_the_hubspot_contract(api, new_account):
    key = new_account("tokens")
    campaign = f"Receipts {uuid.uuid4().hex[:6]}"
    created = []
    for create_contact in (True, False, True):
        reply = await api.post(
            TOKENS, headers=auth(key), json={"createContact": create_contact, "campaignName": campaign}
        )
        assert reply.status_code == 201, reply.text
        created.append(reply.json())
    view = created[0]
    assert set(view) == {"id", "password", "createdBy", "emailCampaignId", "createdAt", "createContact", "campaignName"}
    assert view["createContact"] is True and view["campaignName"] == campaign and view["createdBy"]
    assert view["emailCampaignId"].isdigit() and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", view["createdAt"])
    assert len(base64.urlsafe_b64decode(view["password"] + "==")) * 8 >= 128  # random bits in the password

    # stored as argon2id, never in clear
    stored = (await db("SELECT password_hash FROM smtp_tokens WHERE id = $1", view["id"]))[0]["password_hash"]
    assert stored.startswith("$argon2id$") and view["password"] not in stored

    got = await api.get(f"{TOKENS}/{view['id']}", headers=auth(key))
    assert got.status_code == 200 and got.json() == {k: v for k, v in view.items() if k != "password"}

    # cursor paging with paging.next.after, in creation order; no passwords in lists
    page1 = (await api.get(TOKENS, headers=auth(key), params={"limit": 2})).json()
    assert [t["id"] for t in page1["results"]] == [t["id"] for t in created[:2]]
    assert all("password" not in t for t in page1["results"])
    after = page1["paging"]["next"]["after"]
    page2 = (await api.get(TOKENS, headers=auth(key), params={"limit": 2, "after": after})).json()
    assert [t["id"] for t in page2["results"]] == [created[2]["id"]] and "paging" not in page2

    by_campaign = (await api.get(TOKENS, headers=auth(key), params={"campaignName": campaign})).json()
    assert len(by_campaign["results"]) == 3
    by_id = (await api.get(TOKENS, headers=auth(key), params={"emailCampaignId": created[1]["emailCampaignId"]})).json()
    assert [t["id"] for t in by_id["results"]] == [created[1]["id"]]

    # another account sees none of them
    other = new_account("tokens-other")
    assert (await api.get(f"{TOKENS}/{view['id']}", headers=auth(other))).status_code == 404
    assert (await api.get(TOKENS, headers=auth(other))).json() == {"results": []}

    reset = await api.post(f"{TOKENS}/{view['id']}/password-reset", headers=auth(key))
    assert reset.status_code == 200 and reset.json()["password"] != view["password"]
    assert {k: v for k, v in reset.json().items() if k != "password"} == got.json()

    deleted = await api.delete(f"{TOKENS}/{view['id']}", headers=auth(key))
    assert deleted.status_code == 204 and deleted.content == b""
    missing = await api.get(f"{TOKENS}/{view['id']}", headers=auth(key))
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
    assert missing.json()["status"] == "error" and missing.json()["correlationId"]
    assert (await api.delete(f"{TOKENS}/{view['id']}", headers=auth(key))).status_code == 404


async def test_tokens_api_rejects_bad_input_and_bad_keys_in_the_error_shape(api, new_account):
    key = new_account("tokens-bad")
    bad = await api.post(TOKENS, headers=auth(key), json={"campaignName": "x"})
    assert bad.status_code == 400 and bad.json()["category"] == "VALIDATION_ERROR"
    assert [e["in"] for e in bad.json()["errors"]] == ["createContact"]
    assert (await api.get(TOKENS, headers=auth(key), params={"after": "nope"})).status_code == 400
    assert (await api.get(TOKENS, headers=auth(key), params={"limit": 0})).status_code == 400
    unauthorized = await api.get(TOKENS, headers=auth("ms_not-a-key"))
    assert unauthorized.status_code == 401 and unauthorized.json()["category"] == "INVALID_AUTHENTICATION"


# --- submission over SMTP -------------------------------------------------------------------------------


async def test_swaks_submission_is_delivered_with_its_headers_and_tracking(token, sink, unique_address):
    to = unique_address()
    order = uuid.uuid4().hex[:8]
    proc = await asyncio.create_subprocess_exec(
        "swaks",
        "--server", f"127.0.0.1:{SMTP_PORT}",
        "--tls",
        "--auth", "LOGIN",
        "--auth-user", token.id,
        "--auth-password", token.password,
        "--from", f"orders@{token.domain}",
        "--to", to,
        "--header", f"Subject: Order {order}",
        "--header", f"X-Order-Id: {order}",
        "--add-header", "Content-Type: text/html; charset=utf-8",
        "--body", f'<p>Track <a href="https://shop.example/track/{order}">your parcel</a></p>',
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out = (await asyncio.wait_for(proc.communicate(), 60))[0].decode()
    assert proc.returncode == 0, out
    queued = re.search(r"<~  250 2\.0\.0 OK queued as ([0-9a-f-]{36})", out)
    assert queued, out

    [got] = await sink.wait_for(to)
    message = email.message_from_string(got["data"], policy=default)
    assert message["Subject"] == f"Order {order}" and message["X-Order-Id"] == order
    assert message["From"] == f"orders@{token.domain}" and "swaks" in message["X-Mailer"]
    assert got["mail_from"].endswith("@" + token.domain) or token.domain in got["mail_from"]
    html = html_part(got["data"])
    tracker = SETTINGS.tracking_base_url
    assert f"{tracker}/o/" in html, "no open pixel"  # the renderer's tracking on whole SMTP messages
    assert f"{tracker}/c/" in html and f"https://shop.example/track/{order}" not in html, "link not rewritten"


async def test_smtplib_submission_to_two_recipients_creates_contacts_and_counts_as_sent_for_the_token(
    token, api, sink, unique_address
):
    rcpts = [unique_address(), unique_address("example.org")]
    order = uuid.uuid4().hex[:8]
    code, text = await asyncio.to_thread(submit, token, receipt(f"orders@{token.domain}", rcpts, order))
    assert code == 250, text
    ids = text.split("queued as ", 1)[1].split()
    assert len(ids) == 2

    delivered = [(await sink.wait_for(r))[0] for r in rcpts]
    for got in delivered:
        message = email.message_from_string(got["data"], policy=default)
        assert message["X-Order-Id"] == order and message["Message-ID"] == f"<order-{order}@shop.example>"
        assert message["Subject"] == f"Receipt for order {order}"
        assert message["To"] == ", ".join(rcpts)  # the headers as written, each copy to its own envelope rcpt
    assert [g["rcpt_tos"] for g in delivered] == [[r] for r in rcpts]

    contacts = await db("SELECT email FROM contacts WHERE account_id = $1", token.account_id)
    assert {c["email"] for c in contacts} == {r.lower() for r in rcpts}

    stats = await token_statistics(api, token, lambda c: c["sent"] >= 2 and c["delivered"] >= 2)
    assert stats["tokenId"] == token.id and stats["emailCampaignId"] == token.view["emailCampaignId"]
    assert (stats["counters"]["sent"], stats["counters"]["delivered"], stats["counters"]["bounced"]) == (2, 2, 0)


async def token_statistics(api, token: Token, done, within: float = 60) -> dict:
    stats: dict = {}
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        stats = (await api.get(f"{TOKENS}/{token.id}/statistics", headers=auth(token.key))).json()
        if done(stats["counters"]):
            break
        await asyncio.sleep(0.5)
    return stats


async def test_an_open_of_a_message_sent_over_smtp_counts_in_the_token_statistics(token, api, sink, unique_address):
    rcpts = [unique_address(), unique_address()]
    code, text = await asyncio.to_thread(submit, token, receipt(f"orders@{token.domain}", rcpts, "5"))
    assert code == 250, text
    got = (await sink.wait_for(rcpts[0]))[0]
    pixel = re.search(r'src="([^"]+/o/[^"]+)"', html_part(got["data"]))
    assert pixel, "no open pixel in the delivered message"
    async with httpx.AsyncClient(timeout=10) as client:  # opened once, by a person
        assert (await client.get(pixel.group(1), headers={"User-Agent": BROWSER})).status_code == 200
    stats = await token_statistics(api, token, lambda c: c["delivered"] >= 2 and c["uniqueOpens"] >= 1)
    c = stats["counters"]
    assert (c["sent"], c["delivered"], c["opens"], c["uniqueOpens"], c["clicks"]) == (2, 2, 1, 1, 0)
    assert stats["ratios"] == {"openRate": 0.5, "clickRate": 0.0}


async def test_a_new_token_has_zero_statistics(token, api):
    stats = (await api.get(f"{TOKENS}/{token.id}/statistics", headers=auth(token.key))).json()
    assert set(stats["counters"].values()) == {0} and stats["ratios"] == {"openRate": 0.0, "clickRate": 0.0}


async def test_bad_password_missing_starttls_oversized_and_foreign_from_get_the_right_replies(token):
    source = client_address()
    msg = receipt(f"orders@{token.domain}", ["someone@example.com"], "1")

    with pytest.raises(smtplib.SMTPAuthenticationError) as bad:
        await asyncio.to_thread(submit, token, msg, password="not-the-password", source=source)
    assert bad.value.smtp_code == 535

    def without_starttls():
        with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30, source_address=(source, 0)) as smtp:
            smtp.ehlo()
            return "auth" in smtp.esmtp_features, smtp.docmd("AUTH", "LOGIN"), smtp.mail(f"orders@{token.domain}")

    advertised, auth_reply, mail_reply = await asyncio.to_thread(without_starttls)
    assert not advertised and auth_reply[0] == 530 and mail_reply[0] == 530
    assert b"STARTTLS" in mail_reply[1]

    def oversized():
        with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30) as smtp:
            smtp.starttls(context=TLS)
            smtp.ehlo()
            limit = int(smtp.esmtp_features["size"])
            smtp.login(token.id, token.password)
            big = receipt(f"orders@{token.domain}", ["someone@example.com"], "2")
            big.add_attachment(os.urandom(limit), maintype="application", subtype="octet-stream")
            smtp.mail(f"orders@{token.domain}")
            smtp.rcpt("someone@example.com")
            return smtp.data(big.as_bytes(policy=SMTP))

    code, _ = await asyncio.to_thread(oversized)
    assert code == 552

    code, text = await asyncio.to_thread(submit, token, receipt("orders@elsewhere.example", ["a@example.com"], "3"))
    assert code == 550 and "elsewhere.example is not a sending domain of this account" in text


async def test_after_a_password_reset_the_old_password_fails_at_once_and_after_delete_the_token_fails(token, api):
    msg = receipt(f"orders@{token.domain}", [f"r-{uuid.uuid4().hex[:8]}@example.com"], "4")
    reset = await api.post(f"{TOKENS}/{token.id}/password-reset", headers=auth(token.key))
    assert reset.status_code == 200
    new_password = reset.json()["password"]
    with pytest.raises(smtplib.SMTPAuthenticationError) as old:
        await asyncio.to_thread(submit, token, msg, source=client_address())
    assert old.value.smtp_code == 535
    code, _ = await asyncio.to_thread(submit, token, msg, password=new_password)
    assert code == 250

    assert (await api.delete(f"{TOKENS}/{token.id}", headers=auth(token.key))).status_code == 204
    with pytest.raises(smtplib.SMTPAuthenticationError) as deleted:
        await asyncio.to_thread(submit, token, msg, password=new_password, source=client_address())
    assert deleted.value.smtp_code == 535


async def test_failed_auth_is_throttled_per_client_address(token):
    source = client_address()

    def attempt(password: str) -> int:
        with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30, source_address=(source, 0)) as smtp:
            smtp.starttls(context=TLS)
            smtp.ehlo()
            smtp.user, smtp.password = token.id, password
            try:
                return smtp.auth("PLAIN", smtp.auth_plain)[0]
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code

    codes = [await asyncio.to_thread(attempt, "wrong") for _ in range(6)]
    assert codes[0] == 535 and codes[-1] == 454  # the limit is MAILSTREAM_SMTP_AUTH_MAX_FAILURES (5)
    assert await asyncio.to_thread(attempt, token.password) == 454  # refused without checking


async def test_created_by_is_the_users_email_and_the_token_outlives_the_users_removal(api, new_account):
    admin = new_account("tokens-users")
    email_address = f"ops-{uuid.uuid4().hex[:6]}@shop.example"
    user = await api.post("/mailstream/v1/users", headers=auth(admin), json={"email": email_address, "name": "Ops"})
    assert user.status_code == 201, user.text
    user_id = user.json()["id"]
    made = await api.post("/mailstream/v1/api-keys", headers=auth(admin), json={"name": "ops", "userId": user_id})
    assert made.status_code == 201, made.text
    created = await api.post(
        TOKENS, headers=auth(made.json()["key"]), json={"createContact": False, "campaignName": "By a user"}
    )
    assert created.status_code == 201 and created.json()["createdBy"] == email_address
    view = created.json()
    account_id = (await db("SELECT account_id FROM smtp_tokens WHERE id = $1", view["id"]))[0]["account_id"]
    domain = f"shop-{uuid.uuid4().hex[:10]}.example"
    added = await api.post("/mailstream/v1/sending-domains", headers=auth(admin), json={"domain": domain})
    assert added.status_code == 201, added.text

    assert (await api.delete(f"/mailstream/v1/users/{user_id}", headers=auth(admin))).status_code == 204
    got = await api.get(f"{TOKENS}/{view['id']}", headers=auth(admin))
    assert got.status_code == 200 and got.json()["createdBy"] == email_address
    token = Token(admin, view, account_id, domain)
    code, _ = await asyncio.to_thread(submit, token, receipt(f"orders@{domain}", ["someone@example.com"], "6"))
    assert code == 250

"""SMTP submission on implicit TLS (HubSpot's 465; 2465 locally) on the running gateway: smtplib's
SMTP_SSL authenticates with an SMTP token and the message is delivered, exactly as on the
STARTTLS port; a client that speaks SMTP before TLS gets nothing."""

from __future__ import annotations

import asyncio
import email
import os
import random
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.policy import SMTP, default

import asyncpg
import pytest

from mailstream.core.settings import LinkSettings

pytestmark = pytest.mark.e2e

SETTINGS = LinkSettings.from_env()
SMTPS_PORT = int(os.environ.get("MAILSTREAM_TEST_SMTPS_PORT", "2465"))
TOKENS = "/marketing/v3/transactional/smtp-tokens"
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE  # the development server's certificate is self-signed


def client_address() -> str:
    """A loopback address of its own, so that failed-AUTH throttling of other runs does not interfere."""
    return f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}.{random.randrange(1, 250)}"


async def new_token(api, key: str) -> tuple[dict, str]:
    headers = {"Authorization": f"Bearer {key}"}
    created = await api.post(TOKENS, headers=headers, json={"createContact": True, "campaignName": "Receipts"})
    assert created.status_code == 201, created.text
    domain = f"shop-{uuid.uuid4().hex[:10]}.example"
    added = await api.post("/mailstream/v1/sending-domains", headers=headers, json={"domain": domain})
    assert added.status_code == 201, added.text
    return created.json(), domain


def receipt(sender: str, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Shop <{sender}>"
    msg["To"] = to
    msg["Subject"] = "Receipt over SMTPS"
    msg.set_content("Your order ships today.")
    return msg


def submit_smtps(user: str, password: str, msg: EmailMessage, source: str) -> tuple[dict, set[str]]:
    """SMTP_SSL: TLS first, then EHLO, AUTH and one message. (refused recipients, EHLO extensions)."""
    with smtplib.SMTP_SSL("127.0.0.1", SMTPS_PORT, timeout=30, context=TLS, source_address=(source, 0)) as smtp:
        smtp.ehlo()
        extensions = set(smtp.esmtp_features)
        smtp.login(user, password)
        to = [a.addr_spec for a in msg["To"].addresses]
        return smtp.sendmail(msg["From"].addresses[0].addr_spec, to, msg.as_bytes(policy=SMTP)), extensions


def plain_hello() -> None:
    with smtplib.SMTP("127.0.0.1", SMTPS_PORT, timeout=5) as smtp:
        smtp.ehlo()


async def test_smtp_ssl_authenticates_with_a_token_and_delivers(api, sink, new_account, unique_address):
    token, domain = await new_token(api, new_account("smtps"))
    to = unique_address()
    msg = receipt(f"orders@{domain}", to)
    refused, extensions = await asyncio.to_thread(submit_smtps, token["id"], token["password"], msg, client_address())
    assert refused == {}
    assert "auth" in extensions and "starttls" not in extensions  # already encrypted: AUTH at once, no STARTTLS

    (received,) = await sink.wait_for(to, within=60)
    delivered = email.message_from_string(received["data"], policy=default)
    assert delivered["Subject"] == "Receipt over SMTPS" and delivered["From"] == f"Shop <orders@{domain}>"
    assert received["mail_from"].endswith(f"@bounces.{domain}")  # the message's VERP return path
    message_id = uuid.UUID(delivered["X-Mailstream-ID"])
    rows = []
    conn = await asyncpg.connect(SETTINGS.database_url)
    try:
        for _ in range(100):  # the tracker attributes the message to the token it was submitted with
            rows = await conn.fetch("SELECT smtp_token_id FROM tracked_messages WHERE message_id = $1", message_id)
            if rows:
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    assert [r["smtp_token_id"] for r in rows] == [token["id"]]


async def test_a_wrong_password_is_535_and_a_client_without_tls_gets_nothing(api, new_account, unique_address):
    token, domain = await new_token(api, new_account("smtps-refused"))
    msg = receipt(f"orders@{domain}", unique_address())
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        await asyncio.to_thread(submit_smtps, token["id"], "not-the-password", msg, client_address())
    assert refused.value.smtp_code == 535
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError)):
        await asyncio.to_thread(plain_hello)

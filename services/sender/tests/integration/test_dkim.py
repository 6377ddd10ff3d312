"""DKIM signing with the sending domain's key from the sending_domains table (real PostgreSQL),
verified at the receiver with dkimpy against the published public key."""

import base64
import uuid

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailstream.schemas import DeliveryOutcome

pytestmark = pytest.mark.integration


@pytest.fixture
async def sending_domain(db, account_id):
    """A verified sending domain with a fresh RSA 2048 key, as the gateway stores it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    domain, selector = f"d{uuid.uuid4().hex[:10]}.example", "ms1"
    await db.execute(
        """INSERT INTO sending_domains
               (account_id, domain, dkim_selector, dkim_private_key, dkim_public_key, verified_at)
           VALUES ($1, $2, $3, $4, $5, now())""",
        account_id,
        domain,
        selector,
        private_pem,
        base64.b64encode(public_der).decode(),
    )
    yield account_id, domain, selector, base64.b64encode(public_der)
    await db.execute("DELETE FROM sending_domains WHERE account_id = $1", account_id)


async def test_a_delivered_message_carries_a_valid_signature_of_the_sending_domain(
    sending_domain, topics, producer, smtp_server, sender_process, policy_dir, receiver_class, make_rendered
):
    account, domain, selector, public_b64 = sending_domain
    sink = await smtp_server(receiver_class())
    await sender_process(topics, policy_dir(), relay=f"127.0.0.1:{sink.port}")
    signed = make_rendered("signed@example.com", account_id=account, domain=domain)
    unsigned = make_rendered("unsigned@example.com", account_id=account, domain="unverified.example")
    await topics.send(producer, [signed, unsigned])
    events = await topics.deliveries(2)
    assert all(e.outcome is DeliveryOutcome.DELIVERED for e in events)
    data = {r["rcpt_tos"][0]: r["data"] for r in sink.received}

    published = {f"{selector}._domainkey.{domain}.": b"v=DKIM1; k=rsa; p=" + public_b64}

    def dnsfunc(name, timeout=5):
        return published.get(name.decode() if isinstance(name, bytes) else name)

    message = data["signed@example.com"]
    assert message.startswith(b"DKIM-Signature:")
    assert f"d={domain}".encode() in message and f"s={selector}".encode() in message
    assert dkim.verify(message, dnsfunc=dnsfunc)
    assert not dkim.verify(message.replace(b"hello", b"HELLO"), dnsfunc=dnsfunc)  # the body is covered
    assert b"DKIM-Signature" not in data["unsigned@example.com"]  # no verified key, no signature

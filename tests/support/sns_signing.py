"""SNS messages signed as Amazon SNS signs them (SignatureVersion 2, SHA256withRSA), with a
throwaway key whose certificate a small HTTP server on loopback serves: the tracker fetches it
from there (the local stack allows http://127.0.0.1: as a certificate URL prefix).

    async with SnsSigner() as sns:
        await tracker.post("/mailstream/v1/feedback/ses", json=sns.notification(ses_complaint))
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from mailstream.tracker.feedback_auth import sns_message
from testkit import dev_feedback, free_port


def self_signed() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


def sign(doc: dict, key: rsa.RSAPrivateKey, *, cert_prefixes: tuple[str, ...]) -> dict:
    """`doc` with its Signature: the string to sign is the tracker's own (feedback_auth)."""
    unsigned = sns_message(
        {**doc, "Signature": ""}, cert_url_prefixes=cert_prefixes, topic_arns=(doc["TopicArn"],)
    ).string_to_sign
    signature = key.sign(unsigned, padding.PKCS1v15(), hashes.SHA256())
    return {**doc, "Signature": base64.b64encode(signature).decode()}


class SnsSigner:
    def __init__(self, topic_arn: str | None = None) -> None:
        self.topic_arn = topic_arn or dev_feedback("FEEDBACK_SNS_TOPIC_ARNS").split(",")[0]
        self.key, self.pem = self_signed()
        self.port = free_port("127.0.0.1")
        self.cert_url = f"http://127.0.0.1:{self.port}/SimpleNotificationService-test.pem"

    async def __aenter__(self) -> SnsSigner:
        async def certificate(_: web.Request) -> web.Response:
            return web.Response(body=self.pem)

        app = web.Application()
        app.router.add_get("/SimpleNotificationService-test.pem", certificate)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()

    def notification(self, message: dict | str, **overrides) -> dict:
        doc = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": self.topic_arn,
            "Message": message if isinstance(message, str) else json.dumps(message),
            "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "SignatureVersion": "2",
            "SigningCertURL": self.cert_url,
            **overrides,
        }
        return sign(doc, self.key, cert_prefixes=("http://127.0.0.1:",))

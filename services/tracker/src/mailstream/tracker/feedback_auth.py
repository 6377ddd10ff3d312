"""Who may hand the tracker a spam complaint (issue 19). Pure: no I/O.

- ARF over HTTP: a shared secret, as `Authorization: Bearer <secret>` or as the password of basic
  auth (what a provider's feedback-loop form usually offers).
- SES over HTTP: an SNS message whose signature verifies with Amazon's signing certificate (its
  URL must be one of Amazon's SNS hosts, or an operator-allowed prefix), from an allowed topic.
- ARF over SMTP: only from the configured source networks. DSNs to return paths stay open to
  every MTA: their VERP token is their proof.

An empty setting refuses everything: a feedback endpoint nobody configured takes no complaints.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

AMAZON_SNS_CERT = re.compile(r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[^?#]+\.pem$")
# The fields SNS signs, in this order, each as "Name\nvalue\n" (Subject only when present).
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
HASHES = {"1": "sha1", "2": "sha256"}  # SignatureVersion -> the hash of SHA*withRSA


class Refused(Exception):
    """The complaint's sender is not who it must be: the reason, for the log and the 401/403 body."""


def split_list(setting: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in setting.split(",") if item.strip())


def arf_secret_given(authorization: str | None, secret: str) -> bool:
    """Bearer <secret>, or basic auth whose password is the secret (any user name)."""
    if not secret or not authorization:
        return False
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    else:
        return False
    return hmac.compare_digest(given.encode(), secret.encode())


def source_allowed(peer_ip: str, networks: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


@dataclass(frozen=True)
class SnsMessage:
    """An SNS envelope whose fields are checked for shape; its signature is not verified yet."""

    doc: dict[str, Any]
    string_to_sign: bytes
    signature: bytes
    hash_name: str
    cert_url: str

    @property
    def type(self) -> str:
        return self.doc["Type"]

    @property
    def topic_arn(self) -> str:
        return self.doc["TopicArn"]


def sns_message(doc: Any, *, cert_url_prefixes: tuple[str, ...], topic_arns: tuple[str, ...]) -> SnsMessage:
    """Raises Refused unless `doc` is an SNS message from an allowed topic, signed (version 1 or 2)
    with a certificate at an allowed URL."""
    if not isinstance(doc, dict) or doc.get("Type") not in SIGNED_FIELDS:
        raise Refused("not an SNS message: SES notifications are taken only in their signed SNS envelope")
    if doc.get("TopicArn") not in topic_arns:
        raise Refused(f"SNS topic {doc.get('TopicArn')!r} is not in MAILSTREAM_FEEDBACK_SNS_TOPIC_ARNS")
    hash_name = HASHES.get(str(doc.get("SignatureVersion")))
    if hash_name is None:
        raise Refused(f"unknown SNS SignatureVersion {doc.get('SignatureVersion')!r}")
    cert_url = doc.get("SigningCertURL") or doc.get("SigningCertUrl") or ""
    if not (AMAZON_SNS_CERT.match(cert_url) or any(cert_url.startswith(p) for p in cert_url_prefixes)):
        raise Refused(f"SigningCertURL {cert_url!r} is not one of Amazon SNS's (nor an allowed prefix)")
    try:
        signature = base64.b64decode(doc.get("Signature") or "", validate=True)
    except binascii.Error:
        raise Refused("Signature is not base64") from None
    lines = []
    for name in SIGNED_FIELDS[doc["Type"]]:
        if doc.get(name) is None:
            if name == "Subject":  # signed only when the message has one
                continue
            raise Refused(f"SNS field {name} is missing")
        lines.append(f"{name}\n{doc[name]}\n")
    return SnsMessage(doc, "".join(lines).encode(), signature, hash_name, cert_url)

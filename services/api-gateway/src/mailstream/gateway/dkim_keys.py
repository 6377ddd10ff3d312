"""A sending domain's DKIM key pair and selector. CPU only (RSA generation takes ~0.1 s: callers
run it in a thread); the private key is returned to be stored, never to be shown."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_BITS = 2048


@dataclass(frozen=True, slots=True)
class DkimKey:
    selector: str
    public_key: str  # base64 DER (SubjectPublicKeyInfo), the p= of the TXT record
    private_key: str = field(repr=False)  # PEM (PKCS#8); repr=False keeps it out of logs and tracebacks


def new_selector() -> str:
    """`ms` + 8 random hex digits: a new selector per add, so a re-added domain never reuses a published key."""
    return f"ms{secrets.token_hex(4)}"


def new_dkim_key() -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(new_selector(), base64.b64encode(public_der).decode(), private_pem)

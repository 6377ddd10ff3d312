"""Amazon SNS's signing certificates, fetched once per URL and kept, and the signature check.

The URL was checked against Amazon's SNS hosts first (feedback_auth.sns_message); the fetch does
not follow redirects and reads a bounded body.
"""

from __future__ import annotations

import aiohttp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from mailstream.core.retry import TransientError
from mailstream.tracker.feedback_auth import Refused, SnsMessage

MAX_CERT_BYTES = 64 * 1024
HASH = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


class CertUnavailable(TransientError):
    """The certificate could not be fetched: SNS retries the notification later (a 503)."""


class SnsCertificates:
    def __init__(self, *, timeout_s: float = 5.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._keys: dict[str, object] = {}

    async def verify(self, message: SnsMessage) -> None:
        """Raises Refused when the signature does not verify with the message's certificate."""
        key = await self._public_key(message.cert_url)
        try:
            key.verify(message.signature, message.string_to_sign, padding.PKCS1v15(), HASH[message.hash_name]())
        except InvalidSignature:
            raise Refused("the SNS signature does not verify") from None

    async def _public_key(self, url: str):
        if url not in self._keys:
            try:
                async with aiohttp.ClientSession(timeout=self._timeout) as session:
                    async with session.get(url, allow_redirects=False) as reply:
                        if reply.status != 200:
                            raise CertUnavailable(f"{url} answered {reply.status}")
                        pem = await reply.content.read(MAX_CERT_BYTES + 1)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise CertUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
            if len(pem) > MAX_CERT_BYTES:
                raise Refused(f"{url} is not a certificate (over {MAX_CERT_BYTES} bytes)")
            try:
                self._keys[url] = x509.load_pem_x509_certificate(pem).public_key()
            except ValueError:
                raise Refused(f"{url} is not a PEM certificate") from None
        return self._keys[url]

"""DKIM keys of the gateway-owned sending_domains table, cached; signing through OpenSSL.

dkimpy signs with pure-Python RSA (7-8.5 ms per message) and canonicalizes with regex passes
(~0.6 ms per 25 KB body). Here the RSA step is OpenSSL's through `cryptography` (~0.45 ms for
RSA-2048) and canonicalization is done with bytes methods (dkim_relaxed.py, equal to dkimpy's
output); dkimpy still selects the signed header fields. The tags and the signature are the ones
dkimpy's own sign() produces (a test compares them); only the folding differs, see _fold.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable
from functools import lru_cache

import asyncpg
import dkim
from cachetools import TTLCache
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from dkim.canonicalization import strip_trailing_lines

from mailstream.sender.adapters.dkim_relaxed import header_fields, relaxed_body, relaxed_header
from mailstream.sender.adapters.smtp_wire import CrlfMessage, normalize_line_endings

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"list-unsubscribe",  # RFC 8058 3: a one-click unsubscribe must be covered by the signature
    b"list-unsubscribe-post",
)
# Listed in h= once more than they occur (once when absent): one added in transit then breaks the
# signature (RFC 6376 5.4.2, 8.15). So a signed message cannot be made to show another sender, to
# carry an unsubscribe link or one-click promise we did not write, or to have its body decoded
# another way.
OVERSIGNED = (b"from", b"content-transfer-encoding", b"list-unsubscribe", b"list-unsubscribe-post")
MAX_KEYS = 10_000  # cached private keys and key rows, each at most
_PKCS1, _SHA256 = padding.PKCS1v15(), hashes.SHA256()
_WIDTH = 72  # columns of the folded DKIM-Signature, as dkimpy folds it
_TAG_TOKEN = re.compile(rb"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?")


class DkimKeys:
    """(account, domain) -> (selector, private key PEM) of a verified sending domain, or None.
    Keys are cached for `ttl` seconds; a miss only for `miss_ttl`, so a domain verified a moment
    ago signs its next messages (the domain settings promise it is ready at once). At most
    `max_entries` of each (the oldest go first), so many domains cannot grow memory forever."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        ttl: float = 300.0,
        miss_ttl: float = 2.0,
        max_entries: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._keys: TTLCache[tuple[int, str], tuple[bytes, bytes]] = TTLCache(max_entries, ttl, timer=clock)
        self._misses: TTLCache[tuple[int, str], bool] = TTLCache(max_entries, miss_ttl, timer=clock)

    async def key(self, account_id: int, domain: str) -> tuple[bytes, bytes] | None:
        cache_key = (account_id, domain.lower())
        if (cached := self._keys.get(cache_key)) is not None:
            return cached
        if cache_key in self._misses:
            return None
        row = await self._pool.fetchrow(
            "SELECT dkim_selector, dkim_private_key FROM dkim_signing_keys WHERE account_id = $1 AND domain = $2",
            account_id,
            domain.lower(),
        )
        if row is None:
            self._misses[cache_key] = True
            return None
        value = (row["dkim_selector"].encode(), row["dkim_private_key"].encode())
        self._keys[cache_key] = value
        return value


# Header and body canonicalization. The body "simple" (as Amazon SES signs): hashed as sent,
# where relaxed costs 0.1-0.8 ms per 40 KB body (a pass over every run of white space) and only
# helps when something between us and the receiver rewrites white space in the body.
CANONICALIZATIONS = ("relaxed/simple", "relaxed/relaxed")


def sign(
    mime: bytes, *, domain: str, selector: bytes, private_key: bytes, canonicalization: str = "relaxed/simple"
) -> bytes:
    """The message with a DKIM-Signature header (rsa-sha256, `canonicalization`) prepended.

    The message is normalized to CRLF first, so what is signed is what the SMTP client sends
    (it then does not check the line endings again, see smtp_wire.CrlfMessage). Raises
    dkim.DKIMException for a key that cannot sign, a selector or domain that is not a DNS name
    (it would end the header), or a malformed header block."""
    key = _private_key(private_key)
    if not (_TAG_TOKEN.fullmatch(selector) and _TAG_TOKEN.fullmatch(domain.encode())):
        raise dkim.ParameterError(f"selector {selector!r} or domain {domain!r} is not a DNS name")
    mime = normalize_line_endings(mime)
    head, body = _split(mime)
    headers = header_fields(head)
    present = {name.lower() for name, _ in headers}
    include = [h for h in SIGNED_HEADERS if h in present or h == b"from"] + list(OVERSIGNED)  # From: always
    if canonicalization not in CANONICALIZATIONS:
        raise dkim.ParameterError(f"canonicalization {canonicalization!r} is not one of {CANONICALIZATIONS}")
    canonical = relaxed_body(body) if canonicalization.endswith("/relaxed") else strip_trailing_lines(body)
    body_hash = base64.b64encode(hashlib.sha256(canonical).digest())
    d = domain.encode()
    tags = [b"v=1", b"a=rsa-sha256", b"c=" + canonicalization.encode(), b"d=" + d, b"i=@" + d, b"q=dns/txt"]
    tags.append(b"s=" + selector)
    tags += [b"t=%d" % time.time(), b"h=" + b" : ".join(include), b"bh=" + body_hash, b"b="]
    unsigned = b"; ".join(tags)
    # Hashed as dkimpy's DomainSigner.gen_header does: the signed fields, then this header with an
    # empty b=, relaxed, without its final CRLF (folding at spaces does not change that form).
    signed = [relaxed_header(name, value) for name, value in dkim.select_headers(headers, include)]
    name, value = relaxed_header(b"DKIM-Signature", b" " + unsigned)
    data = b"".join(n + b":" + v for n, v in signed) + name + b":" + value.rstrip()
    signature = base64.b64encode(key.sign(data, _PKCS1, _SHA256))
    return CrlfMessage(b"DKIM-Signature: " + _fold(unsigned, signature) + b"\r\n" + mime)


def _fold(unsigned: bytes, signature: bytes) -> bytes:
    """The header value in lines of 72 columns: broken at spaces only (dkimpy's fold cuts a long
    domain, and its signature then fails), except the base64 of b=, on lines of its own, which
    may be split anywhere (FWS is allowed inside it, RFC 6376 3.5)."""
    words = unsigned.split(b" ")[:-1]  # the last word is the empty b=
    lines = [words[0]]
    for word in words[1:]:
        room = _WIDTH - (len(b"DKIM-Signature: ") if len(lines) == 1 else 1)
        if len(lines[-1]) + 1 + len(word) > room:
            lines.append(word)
        else:
            lines[-1] += b" " + word
    value = b"b=" + signature
    lines += [value[i : i + _WIDTH - 1] for i in range(0, len(value), _WIDTH - 1)]
    return b"\r\n ".join(lines)


def _split(mime: bytes) -> tuple[bytes, bytes]:
    """(header block with its last CRLF, body) of a CRLF-only message; dkimpy splits the same way."""
    if mime.startswith(b"\r\n"):
        return b"", mime[2:]
    end = mime.find(b"\r\n\r\n")
    return (mime, b"") if end < 0 else (mime[: end + 2], mime[end + 4 :])


@lru_cache(maxsize=MAX_KEYS)
def _private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """The key object, loaded once per PEM. OpenSSL's full RSA key check (primality of p and q)
    takes ~50 ms, a pause of the event loop per new domain; one signature verified with the
    public half proves the key signs correctly, in ~0.5 ms."""
    try:
        key = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise dkim.KeyFormatError(f"not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise dkim.KeyFormatError(f"a {type(key).__name__}, not an RSA key (the signatures are rsa-sha256)")
    probe = b"mailstream dkim key check"
    try:
        key.public_key().verify(key.sign(probe, _PKCS1, _SHA256), probe, _PKCS1, _SHA256)
    except (InvalidSignature, ValueError) as exc:
        raise dkim.KeyFormatError(f"the RSA key does not produce valid signatures: {exc!r}") from None
    return key

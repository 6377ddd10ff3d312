"""DKIM signing through OpenSSL (adapters/dkim_keys.py): every signature verifies with dkimpy, the
header is byte for byte what dkimpy's own sign() writes, and the byte-level relaxed
canonicalization (adapters/dkim_relaxed.py) equals dkimpy's on any input."""

import base64
import random
import re
import time

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dkim.canonicalization import Relaxed
from dkim.util import parse_tag_value

from mailstream.sender.adapters.dkim_keys import OVERSIGNED, DkimKeys, _private_key, sign
from mailstream.sender.adapters.dkim_relaxed import header_fields, relaxed_body, relaxed_header
from mailstream.sender.adapters.smtp_wire import CrlfMessage, normalize_line_endings

DOMAIN, SELECTOR = "shop.example", b"ms1"


@pytest.fixture(scope="module")
def key():
    """(PEM, dnsfunc publishing the public key) of a fresh RSA-2048 key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dnsfunc(name, timeout=5):
        return record if name in (b"ms1._domainkey.shop.example.", "ms1._domainkey.shop.example.") else None

    return pem, dnsfunc


def receipt(extra_headers: bytes = b"", body: bytes | None = None) -> bytes:
    if body is None:
        lines = base64.encodebytes(random.Random(6376).randbytes(20_000)).replace(b"\n", b"\r\n")
        body = b'--b\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        body += lines + b"\r\n--b--\r\n"
    return (
        b"Message-ID: <m1@shop.example>\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
        b"From: Shop <orders@shop.example>\r\nTo: jane@example.com\r\nSubject: Your receipt\r\n"
        + extra_headers
        + b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
        + body
    )


def signature_tags(signed: bytes) -> dict[bytes, bytes]:
    """The tags of the DKIM-Signature header that `sign` puts first (receipt() then starts with Message-ID)."""
    header = signed.split(b"\r\nMessage-ID:", 1)[0]
    return parse_tag_value(header.split(b":", 1)[1].replace(b"\r\n", b""))


UNSUBSCRIBE = (
    b"List-Unsubscribe: <https://t.shop.example/u/abc>, <mailto:u@shop.example>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
)


class TestSignatures:
    @pytest.mark.parametrize(
        "message",
        [
            receipt(),
            receipt(UNSUBSCRIBE),
            receipt(b"Cc: a@example.com,\r\n\tb@example.com\r\nReply-To:   support@shop.example  \r\n"),  # folded, WSP
            receipt(body=b"text  with \t runs \r\n trailing \t \r\n\r\n\r\n\r\n"),
            receipt(body=b""),
            receipt(body=b"no final line end"),
            receipt(body=b"bare\nline\nfeeds\n").replace(b"\r\n", b"\n"),  # normalized, then signed
        ],
    )
    def test_every_signature_verifies_with_dkimpy(self, key, message):
        pem, dnsfunc = key
        signed = sign(message, domain=DOMAIN, selector=SELECTOR, private_key=pem)
        assert signed.startswith(b"DKIM-Signature: ") and isinstance(signed, CrlfMessage)
        assert dkim.verify(signed, dnsfunc=dnsfunc)

    @pytest.mark.parametrize("canonicalization", ["relaxed/simple", "relaxed/relaxed"])
    def test_random_bodies_verify(self, key, canonicalization):
        pem, dnsfunc = key
        rng = random.Random(8463)
        for _ in range(30):
            body = bytes(rng.choice(b"ab. \t\r\n") for _ in range(rng.randint(0, 300)))
            message = receipt(body=body)
            signed = sign(message, domain=DOMAIN, selector=SELECTOR, private_key=pem, canonicalization=canonicalization)
            assert signature_tags(signed)[b"c"] == canonicalization.encode()
            assert dkim.verify(signed, dnsfunc=dnsfunc), body

    def test_a_body_changed_in_its_white_space_breaks_a_simple_signature_only(self, key):
        pem, dnsfunc = key
        message = receipt(body=b"Hello  world \r\n")
        for canonicalization, survives in (("relaxed/simple", False), ("relaxed/relaxed", True)):
            signed = sign(message, domain=DOMAIN, selector=SELECTOR, private_key=pem, canonicalization=canonicalization)
            rewritten = signed.replace(b"Hello  world \r\n", b"Hello world\r\n")
            assert dkim.verify(rewritten, dnsfunc=dnsfunc) is survives

    @pytest.mark.parametrize(
        ("domain", "selector"),
        [
            (DOMAIN, SELECTOR),
            ("mail." + "long-label" * 6 + ".example", b"s" * 40),  # tags longer than a folded line
            ("a" * 63 + "." + "b" * 63 + ".example", b"2026-12-rotation-key"),
        ],
    )
    def test_the_tags_are_dkimpys_and_long_domains_are_not_cut(self, key, monkeypatch, domain, selector):
        pem, dnsfunc = key
        monkeypatch.setattr(time, "time", lambda: 1_800_000_000.5)  # t= of both signatures
        message = receipt(UNSUBSCRIBE)
        include = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"]
        include += [b"list-unsubscribe", b"list-unsubscribe-post"]
        include += [b"from", b"content-transfer-encoding", b"list-unsubscribe", b"list-unsubscribe-post"]
        theirs = dkim.sign(
            message, selector, domain.encode(), pem, canonicalize=(b"relaxed", b"relaxed"), include_headers=include
        )
        signed = sign(message, domain=domain, selector=selector, private_key=pem, canonicalization="relaxed/relaxed")
        ours = {tag: re.sub(rb"\s+", b"", value) for tag, value in signature_tags(signed).items()}
        expected = {tag: re.sub(rb"\s+", b"", value) for tag, value in signature_tags(theirs + message).items()}
        if domain != DOMAIN:  # dkimpy's fold puts a space into the domain, so it signs other bytes
            del ours[b"b"], expected[b"b"]
        assert ours == expected
        assert ours[b"d"] == domain.encode() and ours[b"s"] == selector
        record = dnsfunc(b"ms1._domainkey.shop.example.")
        assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: record)
        header = signed.split(b"\r\nMessage-ID:", 1)[0].split(b"\r\n")
        assert all(len(line) <= 72 or b" " not in line.strip() for line in header)

    @pytest.mark.parametrize(("domain", "selector"), [("shop.example\r\nBcc: x@y", b"s"), (DOMAIN, b"s; d=evil")])
    def test_a_selector_or_domain_that_would_end_the_header_is_refused(self, key, domain, selector):
        with pytest.raises(dkim.DKIMException):
            sign(receipt(), domain=domain, selector=selector, private_key=key[0])

    def test_list_unsubscribe_and_the_encoding_are_signed_and_oversigned_with_from(self, key):
        pem, _ = key
        message = receipt(UNSUBSCRIBE + b"Content-Transfer-Encoding: 7bit\r\n")
        tags = signature_tags(sign(message, domain=DOMAIN, selector=SELECTOR, private_key=pem))
        assert [name.strip() for name in tags[b"h"].split(b":")] == [
            b"from",
            b"to",
            b"subject",
            b"date",
            b"message-id",
            b"mime-version",
            b"content-type",
            b"content-transfer-encoding",
            b"list-unsubscribe",
            b"list-unsubscribe-post",
            *OVERSIGNED,
        ]
        assert OVERSIGNED == (b"from", b"content-transfer-encoding", b"list-unsubscribe", b"list-unsubscribe-post")
        assert [tags[t] for t in (b"a", b"c", b"s")] == [b"rsa-sha256", b"relaxed/simple", SELECTOR]

    @pytest.mark.parametrize("where", ["top", "bottom"])
    @pytest.mark.parametrize(
        "added",
        [
            b"From: ceo@bank.example",
            b"List-Unsubscribe: <https://evil.example/u>",
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            b"Content-Transfer-Encoding: quoted-printable",
        ],
    )
    @pytest.mark.parametrize("with_unsubscribe", [True, False], ids=["present", "absent"])
    def test_an_added_from_unsubscribe_or_encoding_header_breaks_the_signature(
        self, key, where, added, with_unsubscribe
    ):
        pem, dnsfunc = key
        extra = UNSUBSCRIBE + b"Content-Transfer-Encoding: 7bit\r\n" if with_unsubscribe else b""
        signed = sign(receipt(extra), domain=DOMAIN, selector=SELECTOR, private_key=pem)
        head, body = signed.split(b"\r\n\r\n", 1)
        tampered = added + b"\r\n" + signed if where == "top" else head + b"\r\n" + added + b"\r\n\r\n" + body
        assert dkim.verify(signed, dnsfunc=dnsfunc) and not dkim.verify(tampered, dnsfunc=dnsfunc)

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            (b"/u/abc", b"/u/evil"),  # List-Unsubscribe
            (b"List-Unsubscribe=One-Click", b"List-Unsubscribe=One-Click-Not"),  # List-Unsubscribe-Post
            (b"Content-Transfer-Encoding: 7bit\r\nMIME", b"Content-Transfer-Encoding: 8bit\r\nMIME"),
            (b"From: Shop <orders@shop.example>", b"From: Shop <ceo@shop.example>"),
            (b"--b--", b"--c--"),  # the body
        ],
    )
    def test_a_changed_from_unsubscribe_encoding_or_body_breaks_the_signature(self, key, old, new):
        pem, dnsfunc = key
        message = receipt(UNSUBSCRIBE + b"Content-Transfer-Encoding: 7bit\r\n")
        signed = sign(message, domain=DOMAIN, selector=SELECTOR, private_key=pem)
        assert signed.count(old) == 1
        assert dkim.verify(signed, dnsfunc=dnsfunc) and not dkim.verify(signed.replace(old, new), dnsfunc=dnsfunc)


class TestKeys:
    @pytest.mark.parametrize(
        "pem",
        [
            b"not a key",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ),
        ],
        ids=["garbage", "empty-der", "ec-key", "encrypted"],
    )
    def test_a_key_that_cannot_sign_raises_a_dkim_error(self, pem):
        with pytest.raises(dkim.KeyFormatError):
            sign(receipt(), domain=DOMAIN, selector=SELECTOR, private_key=pem)

    def test_a_key_is_loaded_once(self, key):
        pem, _ = key
        sign(receipt(), domain=DOMAIN, selector=SELECTOR, private_key=pem)
        hits = _private_key.cache_info().hits
        sign(receipt(), domain=DOMAIN, selector=SELECTOR, private_key=pem)
        assert _private_key.cache_info().hits == hits + 1

    async def test_the_key_rows_cache_is_bounded_and_keeps_the_newest(self):
        class Pool:
            queries: list[str] = []

            async def fetchrow(self, sql, account_id, domain):
                self.queries.append(domain)
                return {"dkim_selector": "s", "dkim_private_key": f"pem of {domain}"}

        pool = Pool()
        keys = DkimKeys(pool, max_entries=3)
        for domain in ["a.example", "b.example", "c.example", "d.example", "d.example", "a.example"]:
            assert await keys.key(1, domain) == (b"s", f"pem of {domain}".encode())
        assert pool.queries == ["a.example", "b.example", "c.example", "d.example", "a.example"]  # a was evicted
        assert len(keys._keys) == 3

    async def test_a_domain_without_a_key_is_asked_again_after_the_short_miss_ttl(self):
        class Pool:
            row = None
            queries = 0

            async def fetchrow(self, sql, account_id, domain):
                self.queries += 1
                return self.row

        pool, now = Pool(), [0.0]
        keys = DkimKeys(pool, miss_ttl=2.0, clock=lambda: now[0])
        assert await keys.key(1, "late.example") is None
        pool.row = {"dkim_selector": "s", "dkim_private_key": "pem"}  # verified meanwhile
        assert await keys.key(1, "late.example") is None and pool.queries == 1  # within the miss TTL
        now[0] = 2.5
        assert await keys.key(1, "late.example") == (b"s", b"pem") and pool.queries == 2


class TestRelaxedBody:
    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"\r\n",
            b"\r\n\r\n\r\n",
            b"a",
            b"a ",
            b"a\t \r\n",
            b" \r\n \r\n",
            b"a  b\t\tc \t d\r\n\r\n",
            b"\t\r\n\r\nx\r\n  \r\n",
            b"a\r \r\n",
            b"x\n \r\n\r",
            b" " * 1000 + b"\r\n",
            b"a " * 100 + b"b  c\r\n",  # the run comes after more spaces than are hopped over
            b"a " * 100 + b"b \r\n",
            b"a " * 100 + b"b\r\n",
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nQUJD\r\n \r\n",
        ],
    )
    def test_equals_dkimpy_on_edge_cases(self, body):
        assert relaxed_body(body) == Relaxed.canonicalize_body(body)

    def test_equals_dkimpy_on_random_bodies(self):
        rng = random.Random(6376)
        for _ in range(20_000):
            body = bytes(rng.choice(b"ab \t\t\r\n\r\n.") for _ in range(rng.randint(0, 60)))
            assert relaxed_body(body) == Relaxed.canonicalize_body(body), body

    def test_equals_dkimpy_on_rendered_bodies(self):
        body = receipt().split(b"\r\n\r\n", 1)[1]
        text = b"Dear  Jane,\t\r\nyour order   ships today.   \r\n" * 400 + b"\r\n\r\n"
        for sample in (body, text, body + text):
            assert relaxed_body(sample) == Relaxed.canonicalize_body(sample)


class TestRelaxedHeaders:
    def test_fields_are_parsed_as_dkimpy_parses_them(self):
        head = (
            b"From Mon Nov 30 mbox line\r\nFrom: Shop <o@shop.example>\r\nSubject: a\r\n  folded\r\n\tagain\r\n"
            b"X-Empty:\r\nTo:jane@example.com\r\nX-Colon: a: b\r\n"
        )
        assert header_fields(head) == dkim.rfc822_parse(head + b"\r\n")[0]

    @pytest.mark.parametrize("head", [b"no colon here\r\n", b"Bad Name: x\r\n", b" continuation first\r\n"])
    def test_a_malformed_header_block_is_a_dkim_error(self, head):
        with pytest.raises(dkim.MessageFormatError):
            header_fields(head)

    def test_random_header_blocks_equal_dkimpys(self):
        rng = random.Random(5322)
        pieces = [b"Subject", b"X-A", b":", b": ", b" ", b"\t", b"\r\n ", b"\r\n\t", b"v", b"  w\t\tx ", b"\r", b"@"]
        for _ in range(5000):
            names = [rng.choice([b"From", b"To", b"X-Y", b"Bad Name", b""]) for _ in range(rng.randint(0, 4))]
            fields = [n + b":" + b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) for n in names]
            head = normalize_line_endings(b"".join(f + b"\r\n" for f in fields)) if fields else b""
            if b"\r\n\r\n" in head or head.startswith(b"\r\n"):
                continue  # an empty line ends the header block: not a header block
            try:
                expected = dkim.rfc822_parse(head + b"\r\n")[0]
            except dkim.MessageFormatError:
                with pytest.raises(dkim.MessageFormatError):
                    header_fields(head)
                continue
            assert header_fields(head) == expected, head
            canonical = Relaxed.canonicalize_headers(expected)
            assert [relaxed_header(name, value) for name, value in expected] == canonical, head

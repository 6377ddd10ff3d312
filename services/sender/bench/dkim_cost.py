"""Process CPU per DKIM signature: dkimpy's sign() (the sender's path until now, pure-Python RSA)
against adapters/dkim_keys.sign (OpenSSL RSA through `cryptography`, byte-level body
canonicalization), on messages shaped like the renderer's, and the parts of the new path.

    .mailstream/venv/bin/python services/sender/bench/dkim_cost.py

RSA-2048, relaxed/relaxed, rsa-sha256; the key object is cached in the new path (as in the
sender), the PEM is parsed on every call in dkimpy's (as it was). Best of five runs.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import time

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from dkim.canonicalization import Relaxed

from mailstream.sender.adapters.dkim_keys import sign
from mailstream.sender.adapters.dkim_relaxed import relaxed_body
from mailstream.sender.adapters.smtp_wire import normalize_line_endings

OLD_SIGNED_HEADERS = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"mime-version"]
OLD_SIGNED_HEADERS.append(b"content-type")


def receipt(size: int) -> bytes:
    """Headers (List-Unsubscribe included), then text and HTML parts in base64 lines."""
    part = size // 2 * 3 // 4
    text = base64.encodebytes(os.urandom(part)).replace(b"\n", b"\r\n")
    html = base64.encodebytes(os.urandom(part)).replace(b"\n", b"\r\n")
    return (
        b"Message-ID: <bench@shop.example>\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
        b"From: Shop <orders@shop.example>\r\nTo: jane@example.com\r\nSubject: Your receipt\r\n"
        b"List-Unsubscribe: <https://t.shop.example/u/abc>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b'--b\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + text
        + b'\r\n--b\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + html
        + b"\r\n--b--\r\n"
    )


def old_sign(mime: bytes, pem: bytes) -> bytes:
    """adapters/dkim_keys.sign as it was: dkimpy end to end."""
    present = {line.split(b":", 1)[0].strip().lower() for line in mime.split(b"\r\n\r\n", 1)[0].split(b"\r\n")}
    headers = [h for h in OLD_SIGNED_HEADERS if h in present] or [b"from"]
    return dkim.sign(mime, b"ms1", b"shop.example", pem, canonicalize=(b"relaxed", b"relaxed"), include_headers=headers)


def cpu_us(work, runs: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(runs):
            work()
        best = min(best, time.process_time() - started)
    return best / runs * 1e6


def main(args: argparse.Namespace) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    print("| message | step | CPU µs/message |")
    print("|---|---|---|")
    for size in (25_000, 63_000):
        mime = receipt(size)
        body = mime.split(b"\r\n\r\n", 1)[1]
        label = f"{len(mime) / 1000:.0f} KB"
        rows = [
            ("dkimpy sign() (before)", lambda m=mime: old_sign(m, pem), args.runs // 10 or 1),
            ("dkim_keys.sign (after)", lambda m=mime: sign(m, domain="shop.example", selector=b"ms1", private_key=pem)),
            ("  of which RSA-2048 sign (OpenSSL)", lambda: key.sign(b"x" * 700, padding.PKCS1v15(), hashes.SHA256())),
            ("  of which the line-ending check (once per message)", lambda m=mime: normalize_line_endings(m)),
            ("  of which relaxed body, bytes methods", lambda b=body: relaxed_body(b)),
            ("  of which SHA-256 of the body", lambda b=body: hashlib.sha256(b).digest()),
            ("dkimpy relaxed body (not used any more)", lambda b=body: Relaxed.canonicalize_body(b)),
        ]
        for name, work, *runs in rows:
            print(f"| {label} | {name} | {cpu_us(work, runs[0] if runs else args.runs):,.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="signatures per run (a tenth for dkimpy's)")
    main(parser.parse_args())

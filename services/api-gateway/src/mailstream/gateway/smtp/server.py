"""The SMTP submission server on the gateway's event loop: STARTTLS required before AUTH,
AUTH (PLAIN, LOGIN) required before MAIL, SIZE advertised and enforced."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import os
import ssl
import tempfile
from pathlib import Path

import asyncpg
from aiosmtpd.smtp import SMTP
from cryptography import x509
from prometheus_client import Gauge

from mailstream.gateway.adapters import tokens_store
from mailstream.gateway.adapters.auth_failures import PgAuthFailures
from mailstream.gateway.handlers import Acceptor
from mailstream.gateway.settings import GatewaySettings
from mailstream.gateway.smtp.auth import TokenAuthenticator
from mailstream.gateway.smtp.handler import SubmissionHandler

CERTIFICATE_EXPIRY = Gauge(
    "mailstream_gateway_smtp_certificate_expiry_timestamp_seconds",
    "When the SMTP listener's TLS certificate expires (Unix time)",
)
_aiosmtpd_log = logging.getLogger("mail.log")
_aiosmtpd_log.setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO
# ... and warns on every successful AUTH because it sets its own deprecated Session.login_data
_aiosmtpd_log.addFilter(lambda record: "login_data is deprecated" not in record.getMessage())


def self_signed_pem(hostname: str) -> tuple[bytes, bytes]:
    """A throw-away certificate for development: (certificate PEM, private key PEM)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(hostname),
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def tls_context(settings: GatewaySettings) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.smtp_tls_cert:
        context.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key or None)
        CERTIFICATE_EXPIRY.set(certificate_expiry(Path(settings.smtp_tls_cert).read_bytes()))
        return context
    cert, key = self_signed_pem(settings.smtp_hostname)
    load_pem_in_memory(context, cert + key)
    CERTIFICATE_EXPIRY.set(certificate_expiry(cert))
    return context


def certificate_expiry(pem: bytes) -> float:
    """The first certificate's notAfter, as a Unix time (the one a client checks)."""
    return x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()


def load_pem_in_memory(context: ssl.SSLContext, pem: bytes) -> None:
    """load_cert_chain reads files only: hand it an anonymous in-memory file (Linux memfd), so
    nothing is written to disk and a read-only root filesystem (k8s) is fine."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("mailstream-smtp-cert")
        try:
            os.write(fd, pem)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "cert.pem")
        path.touch(mode=0o600)
        path.write_bytes(pem)
        context.load_cert_chain(path)


async def start_smtp_server(settings: GatewaySettings, *, pool: asyncpg.Pool, acceptor: Acceptor) -> asyncio.Server:
    """Listening when this returns; close() and wait_closed() stop it."""
    context = tls_context(settings)
    authenticator = TokenAuthenticator(
        load_token=lambda token_id: tokens_store.token_by_id(pool, token_id),
        throttle=PgAuthFailures(
            pool, max_failures=settings.smtp_auth_max_failures, window_s=settings.smtp_auth_failure_window
        ),
    )
    handler = SubmissionHandler(
        pool=pool,
        acceptor=acceptor,
        authenticator=authenticator,
        max_recipients=settings.smtp_max_recipients,
        verified_domains_only=settings.smtp_require_verified_domain,
    )

    def protocol() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=settings.smtp_max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.smtp_hostname,
            ident="mailstream",
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            timeout=300,
        )

    loop = asyncio.get_running_loop()
    host = settings.smtp_host or settings.http_host
    return await loop.create_server(protocol, host=host, port=settings.smtp_port)

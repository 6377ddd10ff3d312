"""The SMTP adapter (our own client, adapters/smtp_client.py) against real aiosmtpd servers on loopback."""

import datetime as dt
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailstream.sender.adapters.smtp import Route, SmtpTransport
from mailstream.sender.outcomes import Bounced, Deferred, Delivered

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory):
    """A self-signed certificate in a server-side SSLContext."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "private-sink")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


async def test_delivers_from_the_source_address_and_reuses_the_connection(smtp_server, receiver_class):
    receiver = await smtp_server(receiver_class())
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    route = Route("127.0.0.1", receiver.port, "127.0.0.3")
    for n in range(3):
        mime = f"Subject: {n}\r\n\r\nx\r\n".encode()
        outcome = await transport.deliver(route, "a@shop.example", ["b@example.com"], mime)
        assert isinstance(outcome, Delivered)
    await transport.close()
    assert [r["peer"] for r in receiver.received] == ["127.0.0.3"] * 3
    assert receiver.sessions == 1 and transport.connections_opened == 1
    assert (receiver.received[0]["mail_from"], receiver.received[0]["rcpt_tos"]) == (
        "a@shop.example",
        ["b@example.com"],
    )


async def test_opens_a_new_connection_after_max_deliveries(smtp_server, receiver_class):
    receiver = await smtp_server(receiver_class())
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    route = Route("127.0.0.1", receiver.port, "127.0.0.2")
    for _ in range(7):
        assert isinstance(
            await transport.deliver(route, "a@x.example", ["b@y.example"], b"x\r\n", max_deliveries=3), Delivered
        )
    await transport.close()
    assert receiver.sessions == 3 and len(receiver.received) == 7


async def test_two_source_addresses_use_separate_connections(smtp_server, receiver_class):
    receiver = await smtp_server(receiver_class())
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.3"):
        await transport.deliver(Route("127.0.0.1", receiver.port, ip), "a@x.example", ["b@y.example"], b"x\r\n")
    await transport.close()
    assert [r["peer"] for r in receiver.received] == ["127.0.0.2", "127.0.0.3"] * 2 and receiver.sessions == 2


async def test_a_5xx_reply_is_a_bounce_and_a_4xx_a_deferral(smtp_server, receiver_class):
    rejecting = await smtp_server(receiver_class(lambda a: "550 5.1.1 no such user"))
    busy = await smtp_server(receiver_class(lambda a: "421 4.7.0 try again later"))
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    bounced = await transport.deliver(
        Route("127.0.0.1", rejecting.port, "127.0.0.2"), "a@x.example", ["b@y.example"], b"x"
    )
    deferred = await transport.deliver(Route("127.0.0.1", busy.port, "127.0.0.2"), "a@x.example", ["b@y.example"], b"x")
    await transport.close()
    assert bounced == Bounced(550, "5.1.1 no such user", "127.0.0.1")
    assert isinstance(deferred, Deferred) and deferred.code == 421


async def test_a_closed_port_is_a_deferral_without_a_code():
    transport = SmtpTransport(helo_name="test.local", timeout=2)
    outcome = await transport.deliver(Route("127.0.0.1", 1, "127.0.0.2"), "a@x.example", ["b@y.example"], b"x")
    assert isinstance(outcome, Deferred) and outcome.code is None


async def test_starttls_is_used_when_offered_with_a_self_signed_certificate(smtp_server, receiver_class, server_tls):
    receiver = await smtp_server(receiver_class(), tls_context=server_tls)
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    outcome = await transport.deliver(
        Route("127.0.0.1", receiver.port, "127.0.0.2"), "a@x.example", ["b@y.example"], b"x"
    )
    await transport.close()
    assert isinstance(outcome, Delivered) and receiver.received[0]["tls"] is True


async def test_tls_required_defers_when_starttls_is_not_offered(smtp_server, receiver_class, server_tls):
    plain = await smtp_server(receiver_class())
    secure = await smtp_server(receiver_class(), tls_context=server_tls, require_starttls=True)
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    refused = await transport.deliver(
        Route("127.0.0.1", plain.port, "127.0.0.2", tls="required"), "a@x.example", ["b@y.example"], b"x"
    )
    accepted = await transport.deliver(
        Route("127.0.0.1", secure.port, "127.0.0.2", tls="required"), "a@x.example", ["b@y.example"], b"x"
    )
    await transport.close()
    assert isinstance(refused, Deferred) and "STARTTLS" in refused.reply.upper() and plain.received == []
    assert isinstance(accepted, Delivered) and secure.received[0]["tls"] is True


async def test_tls_disabled_never_upgrades_even_when_starttls_is_offered(smtp_server, receiver_class, server_tls):
    receiver = await smtp_server(receiver_class(), tls_context=server_tls)
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    outcome = await transport.deliver(
        Route("127.0.0.1", receiver.port, "127.0.0.2", tls="disabled"), "a@x.example", ["b@y.example"], b"x"
    )
    await transport.close()
    assert isinstance(outcome, Delivered) and receiver.received[0]["tls"] is False


async def test_ehlo_is_said_again_after_starttls(smtp_server, receiver_class, server_tls):
    hellos = []

    class RecordingHellos(receiver_class):
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            hellos.append((hostname, session.ssl is not None))
            session.host_name = hostname
            return responses

    receiver = await smtp_server(RecordingHellos(), tls_context=server_tls)
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    outcome = await transport.deliver(
        Route("127.0.0.1", receiver.port, "127.0.0.2", tls="required"), "a@x.example", ["b@y.example"], b"x"
    )
    await transport.close()
    assert isinstance(outcome, Delivered) and receiver.received[0]["tls"] is True
    assert hellos == [("test.local", False), ("test.local", True)]

"""The SMTP submission server in this process, against the real PostgreSQL and Kafka, driven by
Python's smtplib (in a thread: the server runs on the test's event loop)."""

from __future__ import annotations

import asyncio
import random
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.policy import SMTP

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from mailstream.core.kafka import reliable_producer
from mailstream.gateway import passwords
from mailstream.gateway.adapters import domains_store, tokens_store
from mailstream.gateway.adapters.accepting import PgAcceptStore
from mailstream.gateway.caches import Caches
from mailstream.gateway.dkim_keys import new_dkim_key
from mailstream.gateway.handlers import Acceptor
from mailstream.gateway.settings import GatewaySettings
from mailstream.gateway.smtp.server import start_smtp_server
from mailstream.schemas import SendSource, decode
from mailstream.schemas.topics import SEND_REQUESTED
from testkit import free_port

pytestmark = pytest.mark.integration

SETTINGS = GatewaySettings.from_env()
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


@pytest.fixture(scope="module")
async def pool():
    pool = await asyncpg.create_pool(SETTINGS.database_url, min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def producer():
    producer = reliable_producer(SETTINGS.kafka_bootstrap, client_id="test-smtp-server")
    await producer.start()
    yield producer
    await producer.stop()


servers: dict[str, int] = {}  # the implicit-TLS port of the module's server


@pytest.fixture(scope="module")
async def server(pool, producer):
    settings = GatewaySettings.from_env(
        {
            "MAILSTREAM_SMTP_PORT": "0",
            "MAILSTREAM_SMTPS_PORT": str(free_port()),
            "MAILSTREAM_SMTP_MAX_MESSAGE_SIZE": "20000",
            "MAILSTREAM_SMTP_MAX_RECIPIENTS": "3",
            "MAILSTREAM_SMTP_AUTH_MAX_FAILURES": "3",
        }
    )
    server = await start_smtp_server(
        settings, pool=pool, acceptor=Acceptor(PgAcceptStore(pool), producer.send_all, Caches(api_key_ttl_s=0))
    )
    servers["smtps"] = server.smtps_sockets[0].getsockname()[1]
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture(scope="module")
async def second_server(pool, producer):
    """Another gateway replica's SMTP listener on the same database."""
    settings = GatewaySettings.from_env(
        {"MAILSTREAM_SMTP_PORT": "0", "MAILSTREAM_SMTPS_PORT": "0", "MAILSTREAM_SMTP_AUTH_MAX_FAILURES": "3"}
    )
    server = await start_smtp_server(
        settings, pool=pool, acceptor=Acceptor(PgAcceptStore(pool), producer.send_all, Caches(api_key_ttl_s=0))
    )
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


class Account:
    def __init__(self, account_id: int, domain: str, token: tokens_store.TokenRow, password: str) -> None:
        self.id, self.domain, self.token, self.password = account_id, domain, token, password


@pytest.fixture
async def account(pool):
    """An account with one sending domain (random) and one token that creates contacts."""
    account_id = await pool.fetchval("INSERT INTO accounts (name) VALUES ($1) RETURNING id", "smtp-test")
    domain = f"d{uuid.uuid4().hex[:10]}.example"
    key = new_dkim_key()  # added as the domain settings add one (not verified)
    await domains_store.insert_domain(
        pool, account_id, domain, selector=key.selector, private_key=key.private_key, public_key=key.public_key
    )
    password = passwords.new_password()
    token = await tokens_store.create_token(
        pool,
        token_id=passwords.new_token_id(),
        account_id=account_id,
        password_hash=passwords.hash_password(password),
        campaign_name="integration",
        create_contact=True,
        created_by="ops@example.com",
    )
    return Account(account_id, domain, token, password)


def message(sender: str, to: list[str], body: str = "Hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Shop <{sender}>"
    msg["To"] = ", ".join(to)
    msg["Subject"] = "Your receipt"
    msg["X-Order"] = "1001"
    msg.set_content(body)
    return msg


def client(port: int, source: str = "127.0.0.1") -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=(source, 0))
    smtp.ehlo()
    return smtp


def fresh_address() -> str:
    """A loopback client address no earlier run used (the throttle's failures outlive a run)."""
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def auth_attempt(port: int, source: str, user: str, password: str) -> int:
    """One AUTH PLAIN command (login() would try PLAIN, then LOGIN); its reply code."""
    with client(port, source) as smtp:
        smtp.starttls(context=TLS)
        smtp.ehlo()
        smtp.user, smtp.password = user, password
        try:
            return smtp.auth("PLAIN", smtp.auth_plain)[0]
        except smtplib.SMTPAuthenticationError as exc:
            return exc.smtp_code


def login_and_send(port: int, user: str, password: str, msg: EmailMessage, source: str = "127.0.0.1"):
    """The reply to DATA, as (code, text); raises what smtplib raises before it."""
    with client(port, source) as smtp:
        smtp.starttls(context=TLS)
        smtp.ehlo()
        smtp.login(user, password)
        smtp.mail(msg["From"].addresses[0].addr_spec)
        for rcpt in [a.addr_spec for a in msg["To"].addresses]:
            code, text = smtp.rcpt(rcpt)
            assert code == 250, text
        code, text = smtp.data(msg.as_bytes(policy=SMTP))
        return code, text.decode()


async def test_an_accepted_message_is_one_send_request_per_recipient_on_kafka_and_in_postgres(server, account, pool):
    rcpts = [f"R{uuid.uuid4().hex[:8]}@example.com", f"r{uuid.uuid4().hex[:8]}@example.org"]
    consumer = AIOKafkaConsumer(bootstrap_servers=SETTINGS.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(SEND_REQUESTED.name, p) for p in range(SEND_REQUESTED.partitions)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        for tp, offset in ends.items():
            consumer.seek(tp, offset)
        msg = message(f"orders@{account.domain}", rcpts)
        code, text = await asyncio.to_thread(login_and_send, server, account.token.id, account.password, msg)
        assert code == 250, text
        ids = text.split("queued as ", 1)[1].split()
        assert len(ids) == 2 and all(uuid.UUID(i) for i in ids)

        # 250 came after the acks: the records are on the topic now.
        found = {}
        for _ in range(50):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    event = decode(r.value)
                    if event.message_id in ids:
                        found[event.message_id] = (r.key, event)
            if len(found) == 2:
                break
        assert set(found) == set(ids)
        for key, event in found.values():
            assert event.source == SendSource.SMTP
            assert event.smtp_token_id == account.token.id
            assert event.campaign_id == str(account.token.email_campaign_id)
            assert key == event.to.lower().encode()
            assert b"X-Order: 1001" in event.raw_message and event.to in rcpts
    finally:
        await consumer.stop()

    rows = await pool.fetch("SELECT message_id::text, recipient FROM send_requests WHERE account_id = $1", account.id)
    assert {r["message_id"] for r in rows} == set(ids)
    contacts = await pool.fetch("SELECT email FROM contacts WHERE account_id = $1", account.id)
    assert {c["email"] for c in contacts} == {r.lower() for r in rcpts}


async def test_auth_login_mechanism_also_works(server, account):
    def run():
        with client(server) as smtp:
            smtp.starttls(context=TLS)
            smtp.ehlo()
            assert "LOGIN" in smtp.esmtp_features["auth"] and "PLAIN" in smtp.esmtp_features["auth"]
            smtp.user, smtp.password = account.token.id, account.password
            return smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False)

    code, _ = await asyncio.to_thread(run)
    assert code == 235


async def test_a_bad_password_is_535(server, account):
    with pytest.raises(smtplib.SMTPAuthenticationError) as err:
        await asyncio.to_thread(
            login_and_send,
            server,
            account.token.id,
            "wrong",
            message(f"a@{account.domain}", ["x@example.com"]),
            fresh_address(),
        )
    assert err.value.smtp_code == 535


async def test_auth_and_mail_before_starttls_are_refused_with_530(server, account):
    def run():
        with client(server) as smtp:
            assert "auth" not in smtp.esmtp_features and "starttls" in smtp.esmtp_features
            mail = smtp.mail(f"a@{account.domain}")
            auth = smtp.docmd("AUTH", "PLAIN AGFiYwBkZWY=")
            return mail, auth

    mail, auth = await asyncio.to_thread(run)
    assert mail[0] == 530 and b"STARTTLS" in mail[1]
    assert auth[0] == 530


async def test_mail_before_auth_is_530_authentication_required(server, account):
    def run():
        with client(server) as smtp:
            smtp.starttls(context=TLS)
            smtp.ehlo()
            return smtp.mail(f"a@{account.domain}")

    code, text = await asyncio.to_thread(run)
    assert code == 530 and b"Authentication required" in text


async def test_size_is_advertised_and_an_oversized_message_gets_552(server, account):
    def run():
        with client(server) as smtp:
            smtp.starttls(context=TLS)
            smtp.ehlo()
            size = smtp.esmtp_features["size"]
            smtp.login(account.token.id, account.password)
            smtp.mail(f"a@{account.domain}")
            smtp.rcpt("big@example.com")
            return size, smtp.data(
                message(f"a@{account.domain}", ["big@example.com"], ("x" * 70 + "\n") * 400).as_bytes(policy=SMTP)
            )

    size, (code, text) = await asyncio.to_thread(run)
    assert size == "20000" and code == 552, text


async def test_a_foreign_from_domain_is_550_with_the_reason(server, account):
    code, text = await asyncio.to_thread(
        login_and_send, server, account.token.id, account.password, message("a@not-ours.example", ["x@example.com"])
    )
    assert code == 550 and "not-ours.example is not a sending domain" in text


async def test_more_recipients_than_the_limit_get_452(server, account):
    def run():
        with client(server) as smtp:
            smtp.starttls(context=TLS)
            smtp.ehlo()
            smtp.login(account.token.id, account.password)
            smtp.mail(f"a@{account.domain}")
            return [smtp.rcpt(f"r{i}@example.com")[0] for i in range(4)]

    assert await asyncio.to_thread(run) == [250, 250, 250, 452]


async def test_failed_auth_is_throttled_per_client_address(server, account):
    def attempt(port: int, source: str, password: str) -> int:
        return auth_attempt(port, source, account.token.id, password)

    guesser, other = fresh_address(), fresh_address()  # failures stay counted in PostgreSQL for the window
    codes = [await asyncio.to_thread(attempt, server, guesser, "wrong") for _ in range(4)]
    assert codes == [535, 535, 535, 454]
    # even the right password is refused from that address for now; another address is unaffected
    assert await asyncio.to_thread(attempt, server, guesser, account.password) == 454
    assert await asyncio.to_thread(attempt, server, other, account.password) == 235


async def test_the_auth_throttle_holds_across_two_gateway_replicas(server, second_server, account):
    """Failures counted by one replica count at the other: a client spreading its guesses over
    replicas (a load balancer's doing) gets no more than the limit (3 here) in all."""

    def attempt(port: int, source: str, password: str) -> int:
        return auth_attempt(port, source, account.token.id, password)

    guesser = fresh_address()
    codes = [await asyncio.to_thread(attempt, port, guesser, "wrong") for port in (server, second_server, server)]
    assert codes == [535, 535, 535]
    assert [await asyncio.to_thread(attempt, port, guesser, "wrong") for port in (second_server, server)] == [454, 454]
    # parallel guesses from a new address through both replicas: the limit holds in all
    parallel = fresh_address()
    ports = [server, second_server] * 5
    codes = await asyncio.gather(*(asyncio.to_thread(attempt, port, parallel, "wrong") for port in ports))
    assert sorted(codes) == [454] * 7 + [535] * 3
    # a success through one replica takes its attempt back at both
    lucky = fresh_address()
    await asyncio.to_thread(attempt, server, lucky, "wrong")
    await asyncio.to_thread(attempt, second_server, lucky, "wrong")
    assert await asyncio.to_thread(attempt, second_server, lucky, account.password) == 235
    assert await asyncio.to_thread(attempt, server, lucky, "wrong") == 535  # the third failure, not refused


async def test_a_password_reset_refuses_the_old_password_at_once_even_in_an_open_session(server, account, pool):
    def open_session(password: str) -> smtplib.SMTP:
        smtp = client(server, fresh_address())
        smtp.starttls(context=TLS)
        smtp.ehlo()
        smtp.login(account.token.id, password)
        return smtp

    smtp = await asyncio.to_thread(open_session, account.password)
    new_password = passwords.new_password()
    await tokens_store.reset_password(pool, account.id, account.token.id, passwords.hash_password(new_password))
    msg = message(f"a@{account.domain}", ["x@example.com"])

    def send_in_open_session():
        smtp.mail(f"a@{account.domain}")
        smtp.rcpt("x@example.com")
        return smtp.data(msg.as_bytes(policy=SMTP))

    code, text = await asyncio.to_thread(send_in_open_session)
    source = fresh_address()  # the old password's failure stays counted for the window
    await asyncio.to_thread(smtp.close)
    assert code == 535 and b"authenticate again" in text
    with pytest.raises(smtplib.SMTPAuthenticationError):
        await asyncio.to_thread(login_and_send, server, account.token.id, account.password, msg, source)
    code, _ = await asyncio.to_thread(login_and_send, server, account.token.id, new_password, msg, source)
    assert code == 250


async def test_a_deleted_token_cannot_authenticate(server, account, pool):
    assert await tokens_store.delete_token(pool, account.id, account.token.id)
    with pytest.raises(smtplib.SMTPAuthenticationError) as err:
        await asyncio.to_thread(
            login_and_send,
            server,
            account.token.id,
            account.password,
            message(f"a@{account.domain}", ["x@e.com"]),
            fresh_address(),
        )
    assert err.value.smtp_code == 535


async def test_when_kafka_does_not_acknowledge_the_message_is_451_and_nothing_is_recorded(account, pool):
    async def unacknowledged(records):
        raise TimeoutError("no ack")

    settings = GatewaySettings.from_env({"MAILSTREAM_SMTP_PORT": "0", "MAILSTREAM_SMTPS_PORT": "0"})
    acceptor = Acceptor(PgAcceptStore(pool), unacknowledged, Caches(api_key_ttl_s=0))
    server = await start_smtp_server(settings, pool=pool, acceptor=acceptor)
    port = server.sockets[0].getsockname()[1]
    try:
        code, text = await asyncio.to_thread(
            login_and_send, port, account.token.id, account.password, message(f"a@{account.domain}", ["k@example.com"])
        )
    finally:
        server.close()
        await server.wait_closed()
    assert code == 451 and "retry later" in text
    assert await pool.fetchval("SELECT count(*) FROM send_requests WHERE account_id = $1", account.id) == 0
    assert await pool.fetchval("SELECT count(*) FROM contacts WHERE account_id = $1", account.id) == 0


async def test_without_create_contact_no_contact_is_created(server, account, pool):
    await pool.execute("UPDATE smtp_tokens SET create_contact = false WHERE id = $1", account.token.id)
    rcpt = f"n{uuid.uuid4().hex[:8]}@example.com"
    code, _ = await asyncio.to_thread(
        login_and_send, server, account.token.id, account.password, message(f"a@{account.domain}", [rcpt])
    )
    assert code == 250
    assert await pool.fetchval("SELECT count(*) FROM send_requests WHERE account_id = $1", account.id) == 1
    assert await pool.fetchval("SELECT count(*) FROM contacts WHERE account_id = $1", account.id) == 0


def smtps_login_and_send(port: int, user: str, password: str, msg: EmailMessage, source: str = "127.0.0.1"):
    """As login_and_send, on the implicit-TLS port: TLS from the first byte, no STARTTLS."""
    with smtplib.SMTP_SSL("127.0.0.1", port, timeout=20, context=TLS, source_address=(source, 0)) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("starttls") and "PLAIN" in smtp.esmtp_features["auth"]
        smtp.login(user, password)
        return smtp.sendmail(
            msg["From"].addresses[0].addr_spec, [a.addr_spec for a in msg["To"].addresses], msg.as_bytes(policy=SMTP)
        )


async def test_the_implicit_tls_port_takes_the_same_auth_and_mail(server, account, pool):
    rcpt = f"s{uuid.uuid4().hex[:8]}@example.com"
    refused = await asyncio.to_thread(
        smtps_login_and_send,
        servers["smtps"],
        account.token.id,
        account.password,
        message(f"a@{account.domain}", [rcpt]),
    )
    assert refused == {}
    count = await pool.fetchval(
        "SELECT count(*) FROM send_requests WHERE account_id = $1 AND recipient = $2", account.id, rcpt
    )
    assert count == 1
    with pytest.raises(smtplib.SMTPAuthenticationError):
        await asyncio.to_thread(
            smtps_login_and_send,
            servers["smtps"],
            account.token.id,
            "wrong",
            message(f"a@{account.domain}", [rcpt]),
            fresh_address(),
        )

    def plain_text_hello(port: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:  # no TLS handshake: nothing is spoken
            smtp.ehlo()

    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError)):
        await asyncio.to_thread(plain_text_hello, servers["smtps"])

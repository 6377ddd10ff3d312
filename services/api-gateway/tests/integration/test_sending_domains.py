"""Sending domains and dedicated IPs through the HTTP API: the gateway app in-process on the real
PostgreSQL, DNS answered by a real dnsmasq (started here on a high port) serving correct records,
wrong records and none. The DKIM key is made when a domain is added, so each test adds its
domains first and then starts the DNS server that publishes (or mangles) their records."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import dev_dns
import httpx
import pytest

from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.gateway.adapters import store
from mailstream.gateway.adapters.dns_lookup import DnsLookup
from mailstream.gateway.app import create_app
from mailstream.gateway.deps import Dependencies
from mailstream.gateway.domain_checks import recheck_pass
from mailstream.gateway.domain_handlers import DomainConfig, DomainService
from mailstream.gateway.kafka_link import KafkaLink
from mailstream.gateway.keys import new_api_key
from testkit import common_settings, free_port

pytestmark = pytest.mark.integration
DATABASE_URL = common_settings().database_url
POLICY_DIR = str(Path(__file__).resolve().parents[4] / "deploy" / "policy")  # pool "pair": 127.0.0.2, 127.0.0.3
DOMAINS = "/mailstream/v1/sending-domains"
IPS = "/mailstream/v1/ips"
CONFIG = DomainConfig(
    policy_dir=POLICY_DIR,
    spf_include="spf.mailstream.test",
    bounce_host="bounces.mailstream.test",
    dns_timeout_s=2.0,
)
MAILSTREAM_CLI = str(Path(sys.executable).with_name("mailstream"))


class DnsServer:
    """dnsmasq answering for *.test only from the records given (everything else under .test: NXDOMAIN)."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, records: list[str]) -> str:
        # a --cname target must be a name dnsmasq knows
        proc, server = await dev_dns.start_private(["--host-record=bounces.mailstream.test,127.0.0.1", *records])
        self.procs.append(proc)
        return server

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()


def txt(host: str, value: str) -> str:
    """A --txt-record option; a value longer than 255 bytes is split into strings (a DKIM key is ~400)."""
    chunks = [value[i : i + 255] for i in range(0, len(value), 255)]
    return f"--txt-record={host}," + ",".join(chunks)


def published(domain: dict, **replace: str | None) -> list[str]:
    """dnsmasq options publishing a domain's records as shown; replace={kind: value or None (absent)}."""
    options = []
    for record in domain["records"]:
        value = replace.get(record["kind"], record["value"])
        if value is None:
            continue
        if record["type"] == "CNAME":
            options.append(f"--cname={record['host']},{value}")
        else:
            options.append(txt(record["host"], value))
    return options


@pytest.fixture
async def pool():
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "gateway", migrations_of("mailstream.gateway"))
    yield pool
    await pool.close()


@pytest.fixture
async def dns():
    server = DnsServer()
    yield server
    await server.stop()


class Gateway:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.service = DomainService(pool, CONFIG, lookup=DnsLookup(nameservers="127.0.0.1:1", timeout=1))
        app = create_app(Dependencies(pool=pool, kafka=KafkaLink(bootstrap="127.0.0.1:1"), domains=self.service))
        self.api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30)

    def use_dns(self, server: str) -> None:
        self.service.lookup = DnsLookup(nameservers=server, timeout=CONFIG.dns_timeout_s)

    async def account(self) -> tuple[int, dict[str, str]]:
        key = new_api_key()
        account_id = await store.create_account(self.pool, f"domains-{uuid.uuid4().hex[:6]}", key)
        return account_id, {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def gw(pool):
    gateway = Gateway(pool)
    yield gateway
    await gateway.api.aclose()


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}.test"


async def add(gw: Gateway, headers: dict, name: str) -> dict:
    reply = await gw.api.post(DOMAINS, headers=headers, json={"domain": name})
    assert reply.status_code == 201, reply.text
    return reply.json()


def by_kind(domain: dict) -> dict[str, dict]:
    return {r["kind"]: r for r in domain["records"]}


async def private_key_of(pool: asyncpg.Pool, account_id: int, domain: str) -> str:
    return await pool.fetchval(
        "SELECT dkim_private_key FROM sending_domains WHERE account_id = $1 AND domain = $2", account_id, domain
    )


async def test_a_domain_publishing_its_records_verifies_and_the_dedicated_ips_become_ready(gw, dns):
    account_id, headers = await gw.account()
    assigned = await gw.api.put(IPS, headers=headers, json={"pool": "pair"})
    assert assigned.status_code == 200, assigned.text
    assert (assigned.json()["pool"], assigned.json()["ips"], assigned.json()["ready"]) == (
        "pair",
        ["127.0.0.2", "127.0.0.3"],
        False,
    )
    name = unique("good")
    domain = await add(gw, headers, name.upper())
    assert domain["domain"] == name and domain["state"] == "PENDING" and not domain["verified"]
    records = by_kind(domain)
    assert records["SPF"] == {
        "kind": "SPF",
        "type": "TXT",
        "host": name,
        "value": "v=spf1 ip4:127.0.0.2 ip4:127.0.0.3 ~all",
        "required": True,
        "status": "UNCHECKED",
        "reason": "not checked yet: publish the record, then verify",
    }
    assert records["DKIM"]["host"] == f"{domain['dkimSelector']}._domainkey.{name}"
    assert records["RETURN_PATH"]["host"] == f"bounces.{name}"
    assert records["RETURN_PATH"]["value"] == "bounces.mailstream.test"
    assert records["DMARC"]["required"] is False

    # SPF through an include, as customers with other senders publish it
    server = await dns.start(
        [
            *published(domain, SPF=f"v=spf1 include:_spf.{name} ~all"),
            txt(f"_spf.{name}", "v=spf1 ip4:127.0.0.2 ip4:127.0.0.3 -all"),
        ]
    )
    gw.use_dns(server)
    verified = await gw.api.post(f"{DOMAINS}/{name}/verify", headers=headers)
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert {k: r["status"] for k, r in by_kind(body).items()} == dict.fromkeys(
        ("SPF", "DKIM", "RETURN_PATH", "DMARC"), "VERIFIED"
    ), body
    assert body["state"] == "VERIFIED" and body["verified"] and body["verifiedAt"] and body["lastCheckedAt"]
    shown = (await gw.api.get(f"{DOMAINS}/{name}", headers=headers)).json()
    assert shown == body  # the statuses are stored
    ips = (await gw.api.get(IPS, headers=headers)).json()
    assert ips["ready"] is True and ips["pool"] == "pair"
    key = await gw.pool.fetchrow("SELECT dkim_selector FROM dkim_signing_keys WHERE account_id = $1", account_id)
    assert key["dkim_selector"] == domain["dkimSelector"]
    pools = await gw.pool.fetch("SELECT pool FROM account_dedicated_pools WHERE account_id = $1", account_id)
    assert [r["pool"] for r in pools] == ["pair"]


async def test_wrong_records_and_no_records_each_say_why(gw, dns):
    account_id, headers = await gw.account()
    await gw.api.put(IPS, headers=headers, json={"pool": "pair"})
    wrong, none, many = unique("wrong"), unique("none"), unique("many")
    wrong_domain = await add(gw, headers, wrong)
    await add(gw, headers, none)
    many_domain = await add(gw, headers, many)
    includes = " ".join(f"include:i{n}.{many}" for n in range(12))
    server = await dns.start(
        published(
            wrong_domain,
            SPF="v=spf1 ip4:127.0.0.2 -all",
            DKIM="v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrong",
            RETURN_PATH="bounces.mailstream.test.elsewhere.test",
            DMARC=None,
        )
        + ["--host-record=bounces.mailstream.test.elsewhere.test,127.0.0.1"]
        + published(many_domain, SPF=f"v=spf1 {includes} ip4:127.0.0.0/24 ~all")
        + [txt(f"i{n}.{many}", "v=spf1 -all") for n in range(12)]
    )
    gw.use_dns(server)

    checked = (await gw.api.post(f"{DOMAINS}/{wrong}/verify", headers=headers)).json()
    found = {k: (r["status"], r["reason"]) for k, r in by_kind(checked).items()}
    assert found["SPF"] == ("IP_NOT_AUTHORIZED", "SPF does not authorize 127.0.0.3")
    assert found["DKIM"][0] == "WRONG_VALUE" and "not this domain's key" in found["DKIM"][1]
    assert found["RETURN_PATH"] == (
        "WRONG_VALUE",
        f"bounces.{wrong} points at bounces.mailstream.test.elsewhere.test, expected bounces.mailstream.test",
    )
    assert found["DMARC"][0] == "MISSING" and "recommended" in found["DMARC"][1]
    assert checked["state"] == "PENDING" and not checked["verified"]

    nothing = (await gw.api.post(f"{DOMAINS}/{none}/verify", headers=headers)).json()
    assert {k: r["status"] for k, r in by_kind(nothing).items()} == dict.fromkeys(
        ("SPF", "DKIM", "RETURN_PATH", "DMARC"), "MISSING"
    )
    assert by_kind(nothing)["SPF"]["reason"] == f"no SPF record (TXT v=spf1) at {none}"

    too_many = by_kind((await gw.api.post(f"{DOMAINS}/{many}/verify", headers=headers)).json())
    assert (too_many["SPF"]["status"], too_many["SPF"]["reason"]) == (
        "TOO_MANY_LOOKUPS",
        "SPF needs 12 DNS lookups, more than 10",
    )
    assert too_many["DKIM"]["status"] == "VERIFIED"
    assert not await gw.pool.fetchval("SELECT count(*) FROM dkim_signing_keys WHERE account_id = $1", account_id)


async def test_a_dns_that_does_not_answer_is_unknown_never_a_failure(gw):
    _, headers = await gw.account()
    name = unique("silent")
    await add(gw, headers, name)
    gw.use_dns(f"127.0.0.1:{free_port(udp=True)}")  # nothing listens there
    checked = (await gw.api.post(f"{DOMAINS}/{name}/verify", headers=headers)).json()
    for record in checked["records"]:
        assert record["status"] == "UNKNOWN" and record["reason"].startswith("UNKNOWN, DNS did not answer"), record
    assert checked["state"] == "PENDING"


async def test_names_are_checked_and_a_domain_is_added_once(gw):
    _, headers = await gw.account()
    for bad in ("localhost", "shop.example.", "me@shop.example", "bad_name!.test", ""):
        reply = await gw.api.post(DOMAINS, headers=headers, json={"domain": bad})
        body = reply.json()
        assert reply.status_code == 400 and body["category"] == "VALIDATION_ERROR", (bad, body)
        assert body["errors"][0]["in"] == "domain"
    name = unique("once")
    first = await add(gw, headers, name)
    again = await gw.api.post(DOMAINS, headers=headers, json={"domain": name.upper()})
    assert again.status_code == 409 and again.json()["category"] == "CONFLICT"
    assert (await gw.api.get(f"{DOMAINS}/{name}", headers=headers)).json()["dkimSelector"] == first["dkimSelector"]


async def test_the_private_key_is_in_no_response(gw):
    account_id, headers = await gw.account()
    name = unique("secret")
    replies = [await gw.api.post(DOMAINS, headers=headers, json={"domain": name})]
    replies.append(await gw.api.get(f"{DOMAINS}/{name}", headers=headers))
    replies.append(await gw.api.get(DOMAINS, headers=headers))
    replies.append(await gw.api.post(f"{DOMAINS}/{name}/verify", headers=headers))
    private_key = await private_key_of(gw.pool, account_id, name)
    assert "BEGIN PRIVATE KEY" in private_key
    body_of_key = "".join(private_key.splitlines()[1:-1])
    for reply in replies:
        assert reply.status_code in (200, 201), reply.text
        assert "PRIVATE KEY" not in reply.text and body_of_key[:64] not in reply.text
        assert "privateKey" not in reply.text


async def test_another_account_can_neither_see_verify_nor_delete_the_domain(gw):
    _, owner = await gw.account()
    _, other = await gw.account()
    name = unique("owned")
    await add(gw, owner, name)
    for method, path in (
        ("GET", f"{DOMAINS}/{name}"),
        ("POST", f"{DOMAINS}/{name}/verify"),
        ("DELETE", f"{DOMAINS}/{name}"),
    ):
        reply = await gw.api.request(method, path, headers=other)
        assert reply.status_code == 404 and reply.json()["category"] == "OBJECT_NOT_FOUND", (method, reply.text)
    assert (await gw.api.get(DOMAINS, headers=other)).json()["results"] == []
    assert (await gw.api.get(f"{DOMAINS}/{name}", headers=owner)).status_code == 200
    assert (await gw.api.delete(f"{DOMAINS}/{name}", headers=owner)).status_code == 204
    assert (await gw.api.get(f"{DOMAINS}/{name}", headers=owner)).status_code == 404


async def test_the_list_is_paged_by_name(gw):
    _, headers = await gw.account()
    suffix = uuid.uuid4().hex[:8]
    names = [f"{label}-{suffix}.test" for label in ("a", "b", "c")]
    for name in names:
        await add(gw, headers, name)
    first = (await gw.api.get(DOMAINS, headers=headers, params={"limit": 2})).json()
    assert [d["domain"] for d in first["results"]] == names[:2]
    after = first["paging"]["next"]["after"]
    second = (await gw.api.get(DOMAINS, headers=headers, params={"limit": 2, "after": after})).json()
    assert [d["domain"] for d in second["results"]] == names[2:]
    assert second.get("paging") is None


async def test_re_verification_flags_a_domain_whose_records_disappear_then_clears_it_after_the_grace(gw, dns):
    account_id, headers = await gw.account()
    name = unique("lapse")
    domain = await add(gw, headers, name)
    gw.use_dns(await dns.start(published(domain)))
    assert (await gw.api.post(f"{DOMAINS}/{name}/verify", headers=headers)).json()["state"] == "VERIFIED"

    now = datetime.now(UTC)
    gw.service.clock = lambda: now + timedelta(hours=1)
    assert await recheck_pass(gw.service, account_id=account_id) == 0  # not due before the 6 h interval

    gw.use_dns(await dns.start([]))  # the records are gone
    gw.service.clock = lambda: now + timedelta(hours=7)
    assert await recheck_pass(gw.service, account_id=account_id) == 1
    flagged = (await gw.api.get(f"{DOMAINS}/{name}", headers=headers)).json()
    assert flagged["state"] == "FAILING" and flagged["verified"] and flagged["failingSince"]
    assert by_kind(flagged)["SPF"]["status"] == "MISSING" and by_kind(flagged)["DKIM"]["status"] == "MISSING"
    assert await gw.pool.fetchval("SELECT count(*) FROM dkim_signing_keys WHERE account_id = $1", account_id) == 1

    gw.use_dns(f"127.0.0.1:{free_port(udp=True)}")  # a DNS outage neither flags more nor clears
    gw.service.clock = lambda: now + timedelta(hours=14)
    assert await recheck_pass(gw.service, account_id=account_id) == 1
    assert (await gw.api.get(f"{DOMAINS}/{name}", headers=headers)).json()["state"] == "FAILING"

    gw.use_dns(await dns.start([]))
    gw.service.clock = lambda: now + timedelta(hours=7 + 73)  # past the 72 h grace
    assert await recheck_pass(gw.service, account_id=account_id) == 1
    lapsed = (await gw.api.get(f"{DOMAINS}/{name}", headers=headers)).json()
    assert lapsed["state"] == "PENDING" and not lapsed["verified"] and lapsed["verifiedAt"] is None
    assert await gw.pool.fetchval("SELECT count(*) FROM dkim_signing_keys WHERE account_id = $1", account_id) == 0


async def test_a_second_replica_skips_the_pass_while_one_holds_the_lock(gw):
    from mailstream.gateway.domain_checks import LOCK_KEY

    async with gw.pool.acquire() as conn:
        assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
        try:
            assert await recheck_pass(gw.service) is None
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def test_ip_assignment_checks_the_pool_names_and_can_be_undone(gw):
    account_id, headers = await gw.account()
    before = (await gw.api.get(IPS, headers=headers)).json()
    assert before["pool"] is None and before["ips"] == [] and not before["ready"] and "pair" in before["availablePools"]
    for bad in ("nope", "shared"):
        reply = await gw.api.put(IPS, headers=headers, json={"pool": bad})
        assert reply.status_code == 400 and "pair" in reply.json()["message"], reply.text
    assert (await gw.api.put(IPS, headers=headers, json={"pool": "pair"})).status_code == 200
    # assigned but not ready (no verified domain): the renderer's view does not list it yet
    assert await gw.pool.fetchval("SELECT pool FROM account_ip_pools WHERE account_id = $1", account_id) == "pair"
    ready = await gw.pool.fetchval("SELECT pool FROM account_dedicated_pools WHERE account_id = $1", account_id)
    assert ready is None
    assert (await gw.api.delete(IPS, headers=headers)).status_code == 204
    assert (await gw.api.get(IPS, headers=headers)).json()["pool"] is None


async def test_the_cli_adds_with_json_records_and_verify_exits_0_only_when_verified(gw, dns):
    account_id, _ = await gw.account()
    name = unique("cli")
    env = {
        **os.environ,
        "MAILSTREAM_DATABASE_URL": DATABASE_URL,
        "MAILSTREAM_POLICY_DIR": POLICY_DIR,
        "MAILSTREAM_BOUNCE_HOST": "bounces.mailstream.test",
        "MAILSTREAM_SPF_INCLUDE": "spf.mailstream.test",
        "MAILSTREAM_DNS_TIMEOUT_S": "2",
    }

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([MAILSTREAM_CLI, *args], env={**env, **extra}, capture_output=True, text=True, timeout=60)

    added = cli("domains", "add", name, "--account", str(account_id), "--json")
    assert added.returncode == 0, added.stderr
    domain = json.loads(added.stdout)
    records = {r["kind"]: (r["type"], r["host"], r["value"]) for r in domain["records"]}
    assert records["SPF"] == ("TXT", name, "v=spf1 include:spf.mailstream.test ~all")  # no dedicated pool yet
    assert "PRIVATE" not in added.stdout
    empty = await dns.start([])
    assert (
        cli("domains", "verify", name, "--account", str(account_id), MAILSTREAM_DNS_NAMESERVERS=empty).returncode == 1
    )
    # the include's own record counts towards SPF's 10 lookups, so it is looked up too
    server = await dns.start([*published(domain), txt("spf.mailstream.test", "v=spf1 ip4:127.0.0.2 ~all")])
    verified = cli("domains", "verify", name, "--account", str(account_id), MAILSTREAM_DNS_NAMESERVERS=server)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    shown = json.loads(cli("domains", "show", name, "--account", str(account_id), "--json").stdout)
    assert shown["state"] == "VERIFIED"
    assert name in cli("domains", "list", "--account", str(account_id)).stdout
    assert cli("ips", "assign", "nope", "--account", str(account_id)).returncode == 2
    assert cli("ips", "assign", "pair", "--account", str(account_id)).returncode == 0
    listed = json.loads(cli("ips", "list", "--account", str(account_id), "--json").stdout)
    assert (listed["pool"], listed["ready"]) == ("pair", True)
    assert cli("domains", "show", name, "--account", "999999999999").returncode == 2
    assert cli("domains", "delete", name, "--account", str(account_id)).returncode == 0

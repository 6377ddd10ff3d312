"""Domain settings end to end: an account takes the pool "pair" as its dedicated IPs, adds a
sending domain, publishes the records through the stack's DNS server (dnsmasq) and verifies it;
before that a send from the domain ends UNCONFIGURED_SENDING_DOMAIN, after it the sink sees the
dedicated source address and a DKIM signature dkimpy verifies against the published TXT record.

The rule is on in a private gateway (MAILSTREAM_REQUIRE_SENDING_DOMAIN=true); the stack's gateway
keeps its default. Records are published as the stack publishes the demo domain's:
deploy/local/dev-dns.py writes .mailstream/dns/<domain>.conf and `stack.sh restart dns` reloads.
"""

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import dkim
import dns.resolver
import httpx
import pytest
from private_gateway import PrivateGateway

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
DNS_FOLDER = REPO / ".mailstream" / "dns"
DNS_SERVER = os.environ.get("MAILSTREAM_DNS_NAMESERVERS", "127.0.0.1:5354").split(",")[0]
SEND = "/marketing/v3/transactional/single-email/send"
DEDICATED = {"127.0.0.2", "127.0.0.3"}  # deploy/policy/pools.toml: [pools.pair]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def reload_dns() -> None:
    subprocess.run([str(REPO / "deploy/local/stack.sh"), "restart", "dns"], check=True, timeout=30)


def publish(view: dict) -> Path:
    lines = subprocess.run(
        [sys.executable, str(REPO / "deploy/local/dev-dns.py"), "domain"],
        input=json.dumps(view),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = DNS_FOLDER / f"{view['domain']}.conf"
    path.write_text(lines)
    reload_dns()
    return path


def txt_from_the_stacks_dns(name, timeout=5):
    host, _, port = DNS_SERVER.partition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [host], int(port or 53)
    name = name.decode() if isinstance(name, bytes) else name
    answer = resolver.resolve(name, "TXT", lifetime=timeout)
    return b"".join(answer[0].strings)


@pytest.fixture
async def strict_gateway(stack, tmp_path):
    gateway = PrivateGateway(
        {
            "MAILSTREAM_REQUIRE_SENDING_DOMAIN": "true",
            "MAILSTREAM_SCHEDULER_ENABLED": "false",
            "MAILSTREAM_DOMAIN_CHECKS_ENABLED": "false",
        },
        str(tmp_path / "gateway.log"),
    )
    await gateway.start()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as client:
        yield client
    gateway.stop()


async def email_from(api, key: str, from_email: str) -> int:
    created = await api.post(
        "/mailstream/v1/emails",
        headers=auth(key),
        json={
            "name": "Receipt",
            "subject": "Your receipt",
            "fromEmail": from_email,
            "html": "<p>Thanks for your order.</p>",
            "subscriptionType": "TRANSACTIONAL",
        },
    )
    assert created.status_code == 201, created.text
    email_id = created.json()["emailId"]
    converted = await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=auth(key))
    assert converted.status_code == 200, converted.text
    return email_id


async def test_a_verified_domain_sends_from_the_dedicated_ips_dkim_signed_and_not_before(
    api, strict_gateway, new_account, sink, unique_address
):
    key, stranger = new_account("domain"), new_account("stranger")
    assert (await api.put("/mailstream/v1/ips", headers=auth(key), json={"pool": "pair"})).status_code == 200
    domain = f"d{uuid.uuid4().hex[:10]}.mailstream.test"
    added = await api.post("/mailstream/v1/sending-domains", headers=auth(key), json={"domain": domain})
    assert added.status_code == 201, added.text
    view = added.json()
    assert view["state"] == "PENDING" and "PRIVATE KEY" not in added.text
    email_id = await email_from(api, key, f"orders@{domain}")

    # before the records exist: not verified, each required record says why, and nothing is sent
    unverified = (await api.post(f"/mailstream/v1/sending-domains/{domain}/verify", headers=auth(key))).json()
    assert not unverified["verified"]
    assert {r["kind"]: r["status"] for r in unverified["records"] if r["required"]} == {
        "SPF": "MISSING",
        "DKIM": "MISSING",
        "RETURN_PATH": "MISSING",
    }, unverified["records"]
    early = unique_address()
    refused = (
        await strict_gateway.post(SEND, headers=auth(key), json={"emailId": email_id, "message": {"to": early}})
    ).json()
    assert (refused["status"], refused["sendResult"]) == ("COMPLETE", "UNCONFIGURED_SENDING_DOMAIN"), refused

    conf = publish(view)
    try:
        verified = await api.post(f"/mailstream/v1/sending-domains/{domain}/verify", headers=auth(key))
        assert verified.json()["verified"], verified.text
        assert (await api.get("/mailstream/v1/ips", headers=auth(key))).json()["ready"] is True

        # another account can neither see, verify nor send from it
        for attempt in (
            api.get(f"/mailstream/v1/sending-domains/{domain}", headers=auth(stranger)),
            api.post(f"/mailstream/v1/sending-domains/{domain}/verify", headers=auth(stranger)),
        ):
            assert (await attempt).status_code == 404
        strangers_email = await email_from(api, stranger, f"orders@{domain}")
        theirs = unique_address()
        stolen = await strict_gateway.post(
            SEND, headers=auth(stranger), json={"emailId": strangers_email, "message": {"to": theirs}}
        )
        assert stolen.json()["sendResult"] == "UNCONFIGURED_SENDING_DOMAIN", stolen.text

        # the domain is ready at once: the next send leaves from the pool, signed with its key
        to = unique_address()
        sent = (
            await strict_gateway.post(SEND, headers=auth(key), json={"emailId": email_id, "message": {"to": to}})
        ).json()
        assert sent["status"] == "PENDING", sent
        (received,) = await sink.wait_for(to, within=60)
        assert received["peer"] in DEDICATED, received["peer"]
        raw = base64.b64decode(received["data_base64"])  # the exact bytes, CRLF and all
        assert raw.startswith(b"DKIM-Signature:") and f"d={domain}".encode() in raw
        assert dkim.verify(raw, dnsfunc=txt_from_the_stacks_dns)
        assert not dkim.verify(raw.replace(b"Your receipt", b"Your rec3ipt"), dnsfunc=txt_from_the_stacks_dns)
        assert await sink.wait_for(early, within=1) == [] and await sink.wait_for(theirs, within=1) == []
    finally:
        conf.unlink(missing_ok=True)
        reload_dns()
        await api.delete(f"/mailstream/v1/sending-domains/{domain}", headers=auth(key))

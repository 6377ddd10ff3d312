"""Domain settings end to end: an account takes the pool "pair" as its dedicated IPs, adds a
sending domain, publishes the records through the stack's DNS server (dnsmasq) and verifies it;
before that a send from the domain ends UNCONFIGURED_SENDING_DOMAIN, after it the sink sees the
dedicated source address and a DKIM signature dkimpy verifies against the published TXT record.

The rule is on in a private gateway (MAILSTREAM_REQUIRE_SENDING_DOMAIN=true); the stack's gateway
keeps its default. Records are published as `make run` publishes the demo domain's
(`stack.sh dns-publish`, tests/support/dev_dns.py).
"""

import base64
import uuid

import dev_dns
import dkim
import httpx
import pytest
from private_gateway import PrivateGateway

pytestmark = pytest.mark.e2e
SEND = "/marketing/v3/transactional/single-email/send"
DEDICATED = {"127.0.0.2", "127.0.0.3"}  # deploy/policy/pools.toml: [pools.pair]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


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

    dev_dns.publish(view)
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
        assert dkim.verify(raw, dnsfunc=dev_dns.txt)
        assert not dkim.verify(raw.replace(b"Your receipt", b"Your rec3ipt"), dnsfunc=dev_dns.txt)
        assert await sink.wait_for(early, within=1) == [] and await sink.wait_for(theirs, within=1) == []
    finally:
        dev_dns.withdraw(domain)
        await api.delete(f"/mailstream/v1/sending-domains/{domain}", headers=auth(key))

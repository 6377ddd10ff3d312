"""Direct-to-MX delivery: a real DNS server (dnsmasq, started here on a high port) serves MX,
null MX and A records for test domains; the MX hosts are private aiosmtpd servers on loopback."""

import dev_dns
import pytest

from mailstream.schemas import DeliveryOutcome
from mailstream.sender.adapters.dns import BadDomain, MxResolver
from testkit import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
async def dns_server():
    proc, server = await dev_dns.start_private(
        [
            "--mx-host=mx.test,mx-backup.mx.test,20",
            "--mx-host=mx.test,mx-primary.mx.test,10",
            "--host-record=mx-primary.mx.test,127.0.0.7",
            "--host-record=mx-backup.mx.test,127.0.0.1",
            "--mx-host=down.test,mx-dead.down.test,5",
            "--mx-host=down.test,mx-alive.down.test,10",
            "--host-record=mx-dead.down.test,127.0.0.9",
            "--host-record=mx-alive.down.test,127.0.0.1",
            "--dns-rr=nullmx.test,15,000000",  # MX 0 "." (RFC 7505)
            "--host-record=afallback.test,127.0.0.1",
        ]
    )
    yield server
    proc.terminate()
    await proc.wait()


async def test_the_resolver_orders_mx_by_preference_and_knows_bad_domains(dns_server):
    resolver = MxResolver(server=dns_server, timeout=2)
    hosts = await resolver.mx_hosts("mx.test")
    assert [(h.name, h.addresses) for h in hosts] == [
        ("mx-primary.mx.test", ("127.0.0.7",)),
        ("mx-backup.mx.test", ("127.0.0.1",)),
    ]
    assert [(h.name, h.addresses) for h in await resolver.mx_hosts("afallback.test")] == [
        ("afallback.test", ("127.0.0.1",))
    ]
    with pytest.raises(BadDomain, match="null MX"):
        await resolver.mx_hosts("nullmx.test")
    with pytest.raises(BadDomain, match="NXDOMAIN"):
        await resolver.mx_hosts("nothing.test")


async def test_direct_mode_delivers_to_the_preferred_mx_falls_back_and_bounces_bad_domains(
    dns_server, topics, producer, smtp_server, sender_process, policy_dir, receiver_class, make_rendered
):
    # one MX port for every host (a setting of the sender); nothing may listen on 127.0.0.9
    port = free_port("127.0.0.1", "127.0.0.7", "127.0.0.9")
    primary = await smtp_server(receiver_class(), host="127.0.0.7", port=port)
    backup = await smtp_server(receiver_class(), host="127.0.0.1", port=port)
    await sender_process(
        topics, policy_dir(), relay="", sender_dns_server=dns_server, sender_mx_port=port, sender_smtp_timeout=3
    )
    msgs = {name: make_rendered(f"{name}@{name}.test") for name in ("mx", "down", "afallback", "nullmx", "nothing")}
    await topics.send(producer, list(msgs.values()))
    events = {e.message_id: e for e in await topics.deliveries(5, within=30)}
    outcome = {name: events[m.message_id] for name, m in msgs.items()}

    assert (outcome["mx"].outcome, outcome["mx"].remote_host) == (DeliveryOutcome.DELIVERED, "mx-primary.mx.test")
    assert [r["rcpt_tos"] for r in primary.received] == [["mx@mx.test"]]
    # down.test's preferred MX (127.0.0.9) does not answer: the next one gets it
    assert (outcome["down"].outcome, outcome["down"].remote_host) == (DeliveryOutcome.DELIVERED, "mx-alive.down.test")
    assert outcome["afallback"].outcome is DeliveryOutcome.DELIVERED  # no MX: the A record
    assert sorted(r["rcpt_tos"][0] for r in backup.received) == ["afallback@afallback.test", "down@down.test"]
    for name in ("nullmx", "nothing"):
        e = outcome[name]
        assert (e.outcome, e.bounce_class, e.send_result) == (
            DeliveryOutcome.BOUNCED,
            "hard:BadDomain",
            "BLOCKED_DOMAIN",
        ), name

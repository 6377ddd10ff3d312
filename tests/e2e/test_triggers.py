"""Automation triggers end to end: order records on a customer's own topic -> receipts at the sink.

1,000 JSON orders become 1,000 receipts, each listing the line items of its record's array; 10
malformed records become 10 dead letters with their reasons; a second rule on the same topic
with the same sendId template reads it again from the beginning and delivers nothing new;
a paused rule reads nothing and keeps its position, and reads on once resumed. The operator's
restrictions: a topic outside the account's prefixes and a registry outside the allow-list are
refused, and a rule the operator's narrowed prefixes no longer allow is not run.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import triggers_kit as kit

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
ORDERS = 1000
MAILSTREAM_CLI = str(Path(sys.executable).with_name("mailstream"))


@pytest.fixture
async def run_topic():
    topic, domain, run = kit.new_run()
    await kit.create_topic(topic)
    yield topic, domain, run
    await kit.delete_topic(topic)


@pytest.fixture
async def rules(api):
    """Deletes the rules a test made (the trigger process stops their consumers)."""
    made: list[tuple[dict, str]] = []
    yield made
    for headers, rule_id in made:
        await api.delete(f"/mailstream/v1/triggers/{rule_id}", headers=headers)


def malformed(run: str, domain: str) -> list[tuple[bytes, bytes]]:
    bad_json = [(b"bad", b'{"order_id": "x", "customer": ') for _ in range(4)]
    no_recipient = [
        (b"norcpt", json.dumps({"order_id": f"{run}-norcpt-{i}", "status": "paid", "items": []}).encode())
        for i in range(3)
    ]
    no_order_id = [
        (b"noid", json.dumps({"status": "paid", "customer": {"email": f"noid-{i}@{domain}"}}).encode())
        for i in range(3)
    ]
    return bad_json + no_recipient + no_order_id


async def test_orders_on_a_customer_topic_become_receipts_exactly_once(api, new_account, sink, run_topic, rules, stack):
    topic, domain, run = run_topic
    headers = {"Authorization": f"Bearer {new_account('triggers')}"}
    email_id = await kit.receipt_email(api, headers)
    dead = kit.DeadLetters()
    await dead.start()
    try:
        rule = await kit.create_rule(api, headers, kit.receipt_rule(topic, email_id))
        rules.append((headers, rule["id"]))
        orders = [kit.order(i, domain, run) for i in range(ORDERS)]
        refunded = {**kit.order(ORDERS, domain, run), "status": "refunded"}  # the filter skips it
        records = kit.json_records(orders[:500]) + malformed(run, domain) + kit.json_records([refunded, *orders[500:]])
        await kit.produce(topic, records)

        found = await kit.wait_messages(sink.client, domain, ORDERS, within=240)
        await kit.wait_caught_up(rule["consumerGroup"], topic)
        await asyncio.sleep(2)
        found = await kit.messages(sink.client, domain, bodies=True)
        per_recipient = collections.Counter(r for m in found for r in m["rcpt_tos"])
        assert len(found) == ORDERS, f"{len(found)} receipts for {ORDERS} orders"
        assert set(per_recipient) == {o["customer"]["email"] for o in orders}
        assert max(per_recipient.values()) == 1
        by_rcpt = {m["rcpt_tos"][0]: kit.text_of(m["data"]) for m in found}
        for o in orders:
            body = by_rcpt[o["customer"]["email"]]
            assert o["order_id"] in body and o["customer"]["first_name"] in body
            for item in o["items"]:
                assert f"{item['sku']} x {item['qty']}" in body, body

        letters = await dead.of_rule(rule["id"], 10)
        assert len(letters) == 10
        reasons = collections.Counter(d.reason.split(": ", 1)[1].split(":")[0] for d in letters)
        assert reasons == {"bad JSON": 4, "missing recipient field customer.email": 3, "sendIdTemplate": 3}, reasons
        assert {d.source_topic for d in letters} == {topic}
        assert all(d.service == "gateway-triggers" and d.source_offset >= 0 for d in letters)

        statuses = (await api.get(f"/mailstream/v1/triggers/{rule['id']}/stats", headers=headers)).json()
        assert statuses["requested"] == ORDERS
        page = await api.get(f"/mailstream/v1/triggers/{rule['id']}/statuses?limit=10", headers=headers)
        assert len(page.json()["results"]) == 10 and page.json()["paging"]["next"]["after"]

        # Replaying the topic from the beginning (a new rule, a new group, the same sendIds) sends nothing.
        replay = await kit.create_rule(api, headers, kit.receipt_rule(topic, email_id, name="replay"))
        rules.append((headers, replay["id"]))
        await kit.wait_caught_up(replay["consumerGroup"], topic, within=120)
        await asyncio.sleep(3)
        assert len(await kit.messages(sink.client, domain)) == ORDERS
        replayed = (await api.get(f"/mailstream/v1/triggers/{replay['id']}/stats", headers=headers)).json()
        assert replayed["requested"] == 0
        await api.delete(f"/mailstream/v1/triggers/{replay['id']}", headers=headers)

        # Paused: new records wait, the position stays; resumed: they are sent, once.
        paused = await api.post(f"/mailstream/v1/triggers/{rule['id']}/pause", headers=headers)
        assert paused.status_code == 200 and paused.json()["enabled"] is False
        await asyncio.sleep(3)  # the process stops the rule's consumer within its refresh interval
        position = await kit.committed(rule["consumerGroup"], topic)
        later = [kit.order(i, domain, run) for i in range(ORDERS + 1, ORDERS + 6)]
        await kit.produce(topic, kit.json_records(later))
        await asyncio.sleep(5)
        assert len(await kit.messages(sink.client, domain)) == ORDERS
        assert await kit.committed(rule["consumerGroup"], topic) == position
        resumed = await api.post(f"/mailstream/v1/triggers/{rule['id']}/resume", headers=headers)
        assert resumed.json()["enabled"] is True
        found = await kit.wait_messages(sink.client, domain, ORDERS + 5, within=60)
        await asyncio.sleep(2)
        assert len(await kit.messages(sink.client, domain)) == ORDERS + 5
    finally:
        await dead.stop()


async def test_save_for_automation_takes_drafts_only_and_rules_need_a_saved_email(api, new_account):
    headers = {"Authorization": f"Bearer {new_account('triggers')}"}
    created = await api.post(
        "/mailstream/v1/emails",
        headers=headers,
        json={
            "name": "r",
            "subject": "s",
            "fromEmail": "orders@shop.example",
            "html": "<p>x</p>",
            "subscriptionType": "TRANSACTIONAL",
        },
    )
    email_id = created.json()["emailId"]
    refused = await api.post("/mailstream/v1/triggers", headers=headers, json=kit.receipt_rule("orders.x", email_id))
    assert refused.status_code == 400 and refused.json()["errors"][0]["in"] == "emailId"
    assert "save-for-automation" in refused.json()["message"]
    await api.post(f"/mailstream/v1/emails/{email_id}/publish", headers=headers)
    published = await api.post(f"/mailstream/v1/emails/{email_id}/save-for-automation", headers=headers)
    assert published.status_code == 409
    assert published.json()["category"] == "CONFLICT"
    assert "only drafts can be saved for automation; clone it and save the clone" in published.json()["message"]
    reserved = await api.post(
        "/mailstream/v1/triggers",
        headers=headers,
        json=kit.receipt_rule("email.send.requested", email_id),
    )
    assert reserved.status_code == 400 and reserved.json()["errors"][0]["in"] == "sourceTopic"
    other = {"Authorization": f"Bearer {new_account('other')}"}
    clone = (await api.post(f"/mailstream/v1/emails/{email_id}/clone", headers=headers)).json()["emailId"]
    assert (await api.post(f"/mailstream/v1/emails/{clone}/save-for-automation", headers=headers)).status_code == 200
    rule = await kit.create_rule(api, headers, kit.receipt_rule("orders.isolated", clone))
    try:
        assert (await api.get(f"/mailstream/v1/triggers/{rule['id']}", headers=other)).status_code == 404
        assert (await api.post(f"/mailstream/v1/triggers/{rule['id']}/pause", headers=other)).status_code == 404
        schema = (await api.get("/openapi.json")).json()
        assert "/mailstream/v1/triggers/{trigger_id}/pause" in schema["paths"]
        assert "/mailstream/v1/emails/{email_id}/save-for-automation" in schema["paths"]
    finally:
        await api.delete(f"/mailstream/v1/triggers/{rule['id']}", headers=headers)


ORDER_SCHEMA = {
    "type": "record",
    "name": "OrderCreated",
    "namespace": "shop",
    "fields": [
        {"name": "order_id", "type": "string"},
        {"name": "status", "type": "string"},
        {
            "name": "customer",
            "type": {
                "type": "record",
                "name": "Customer",
                "fields": [{"name": "email", "type": "string"}, {"name": "first_name", "type": "string"}],
            },
        },
        {
            "name": "items",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Item",
                    "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}],
                },
            },
        },
    ],
}


async def test_avro_orders_read_through_a_schema_registry_become_receipts(
    api, new_account, sink, run_topic, rules, stack
):
    from schema_registry import SchemaRegistry, wire_format

    topic, domain, run = run_topic
    headers = {"Authorization": f"Bearer {new_account('avro')}"}
    email_id = await kit.receipt_email(api, headers)
    dead = kit.DeadLetters()
    await dead.start()
    async with SchemaRegistry() as registry:
        try:
            # The producer side registers its schema over HTTP, as a Confluent serializer does.
            registered = await api.post(
                f"{registry.url}/subjects/{topic}-value/versions", json={"schema": json.dumps(ORDER_SCHEMA)}
            )
            schema_id = registered.json()["id"]
            # The same server by another name is not the allowed registry (scheme, host, port exactly).
            elsewhere = registry.url.replace("127.0.0.1", "localhost")
            refused = await api.post(
                "/mailstream/v1/triggers",
                headers=headers,
                json=kit.receipt_rule(topic, email_id, recordFormat="AVRO", schemaRegistryUrl=elsewhere),
            )
            assert refused.status_code == 400 and refused.json()["errors"][0]["in"] == "schemaRegistryUrl"
            assert "MAILSTREAM_TRIGGER_REGISTRY_URLS" in refused.json()["message"], refused.text
            body = kit.receipt_rule(topic, email_id, recordFormat="AVRO", schemaRegistryUrl=registry.url)
            rule = await kit.create_rule(api, headers, body)
            rules.append((headers, rule["id"]))
            orders = [kit.order(i, domain, run) for i in range(ORDERS)]
            good = [(o["order_id"].encode(), wire_format(schema_id, ORDER_SCHEMA, o)) for o in orders]
            sample = good[0][1]
            bad = (
                [(b"plain-json", json.dumps(orders[0]).encode()) for _ in range(4)]  # not the wire format
                + [(b"unknown-id", b"\x00\x00\x00\x03\xe7" + sample[5:]) for _ in range(3)]  # schema id 999
                + [(b"truncated", sample[: len(sample) // 2]) for _ in range(3)]
            )
            await kit.produce(topic, good[:500] + bad + good[500:])

            found = await kit.wait_messages(sink.client, domain, ORDERS, within=240)
            await kit.wait_caught_up(rule["consumerGroup"], topic)
            await asyncio.sleep(2)
            found = await kit.messages(sink.client, domain, bodies=True)
            assert len(found) == ORDERS
            assert len({m["rcpt_tos"][0] for m in found}) == ORDERS
            by_rcpt = {m["rcpt_tos"][0]: kit.text_of(m["data"]) for m in found}
            for o in orders[::50]:
                text = by_rcpt[o["customer"]["email"]]
                assert all(f"{item['sku']} x {item['qty']}" in text for item in o["items"]), text
            assert registry.lookups[schema_id] == 1  # a schema is fetched once per process, not per record

            letters = await dead.of_rule(rule["id"], 10)
            assert len(letters) == 10
            reasons = [d.reason for d in letters]
            assert sum("wire format" in r for r in reasons) == 4, reasons
            assert sum("schema id 999" in r for r in reasons) == 3, reasons
            assert sum("bad Avro (schema id" in r for r in reasons) == 3, reasons

            replay = await kit.create_rule(api, headers, {**body, "name": "replay"})
            rules.append((headers, replay["id"]))
            await kit.wait_caught_up(replay["consumerGroup"], topic, within=120)
            await asyncio.sleep(3)
            assert len(await kit.messages(sink.client, domain)) == ORDERS
        finally:
            await dead.stop()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MAILSTREAM_CLI, *args], capture_output=True, text=True, timeout=60, check=True)


async def not_run(rule_id: str, *, expected: bool, within: float = 20) -> bool:
    """Whether the trigger process's gauge of the rules it does not run lists the rule, once it says
    `expected` or the time is up."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=5) as ops:
        while True:
            text = (await ops.get("http://127.0.0.1:8086/metrics")).text
            found = any(
                line.startswith("mailstream_trigger_rules_not_run{") and f'trigger="{rule_id}"' in line
                for line in text.splitlines()
            )
            if found == expected or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.2)


async def test_an_accounts_rules_read_only_the_topics_the_operator_allows_it(api, stack):
    created = cli("accounts", "create", "prefixes")
    account = int(re.search(r"created account (\d+)", created.stderr).group(1))
    headers = {"Authorization": f"Bearer {created.stdout.strip()}"}
    shown = json.loads(cli("accounts", "trigger-topics", str(account), "--set", "acct-{account_id}.").stdout)
    assert shown["topicPrefixes"] == [f"acct-{account}."] and shown["source"] == "account"
    email_id = await kit.receipt_email(api, headers)

    refused = await api.post("/mailstream/v1/triggers", headers=headers, json=kit.receipt_rule("orders", email_id))
    assert refused.status_code == 400 and refused.json()["errors"][0]["in"] == "sourceTopic"
    assert f"'acct-{account}.'" in refused.json()["message"], refused.text
    rule = await kit.create_rule(api, headers, kit.receipt_rule(f"acct-{account}.orders", email_id))
    try:
        patched = await api.patch(
            f"/mailstream/v1/triggers/{rule['id']}", headers=headers, json={"sourceTopic": f"acct-{account + 1}.x"}
        )
        assert patched.status_code == 400 and patched.json()["errors"][0]["in"] == "sourceTopic"

        # Narrowed after the rule was made: the trigger process does not run it, and says so.
        cli("accounts", "trigger-topics", str(account), "--set", "other.")
        assert await not_run(rule["id"], expected=True)
        cli("accounts", "trigger-topics", str(account), "--default")  # the dev stack's default: any topic
        assert not await not_run(rule["id"], expected=False)
    finally:
        await api.delete(f"/mailstream/v1/triggers/{rule['id']}", headers=headers)

"""Statistics per automation trigger rule end to end (issue 16): order records -> receipts at the
sink -> GET /mailstream/v1/stats?triggerId= counts them sent and delivered, and an open of one
(the tracking pixel of the delivered HTML) as an open for the rule; the account's other sends are
not the rule's."""

from __future__ import annotations

import asyncio
import email
import re
import time
import uuid
from email.policy import default

import httpx
import pytest
import triggers_kit as kit

from mailstream.core.settings import LinkSettings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
TRACKER = LinkSettings.from_env().tracking_base_url
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
ORDERS = 5


async def stats_until(api, headers, params, done, within: float = 60.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        reply = await api.get("/mailstream/v1/stats", headers=headers, params=params)
        assert reply.status_code == 200, reply.text
        if done(reply.json()) or time.monotonic() > deadline:
            return reply.json()
        await asyncio.sleep(0.3)


async def test_a_rules_sends_deliveries_and_opens_are_counted_for_the_rule(api, new_account, sink, stack):
    topic, domain, run = kit.new_run()
    await kit.create_topic(topic)
    headers = {"Authorization": f"Bearer {new_account('trigger-stats')}"}
    rule = None
    try:
        email_id = await kit.receipt_email(api, headers, tracking=True)
        rule = await kit.create_rule(api, headers, kit.receipt_rule(topic, email_id))
        orders = [kit.order(i, domain, run) for i in range(ORDERS)]
        await kit.produce(topic, kit.json_records(orders))
        found = await kit.wait_messages(sink.client, domain, ORDERS, within=120)
        assert len(found) == ORDERS

        by_rule = {"triggerId": rule["id"]}
        stats = await stats_until(api, headers, by_rule, lambda s: s["delivered"] >= ORDERS)
        assert (stats["scope"], stats["id"]) == ("trigger", rule["id"])
        assert (stats["sent"], stats["delivered"], stats["bounced"], stats["opens"]) == (ORDERS, ORDERS, 0, 0)

        (first,) = await sink.wait_for(orders[0]["customer"]["email"])
        html = email.message_from_string(first["data"], policy=default).get_body(("html",)).get_content()
        (pixel,) = re.findall(rf"{re.escape(TRACKER)}/o/[A-Za-z0-9_.-]+", html)
        async with httpx.AsyncClient(timeout=10) as tracker:
            assert (await tracker.get(pixel, headers={"User-Agent": BROWSER})).status_code == 200
        stats = await stats_until(api, headers, by_rule, lambda s: s["opens"] >= 1)
        assert (stats["sent"], stats["delivered"], stats["opens"]) == (ORDERS, ORDERS, 1)

        # The rule's own stats endpoint gives the same figures beside its outcome counts.
        mine = (await api.get(f"/mailstream/v1/triggers/{rule['id']}/stats", headers=headers)).json()
        assert mine["requested"] == ORDERS
        assert {k: mine["statistics"][k] for k in ("sent", "delivered", "opens")} == {
            "sent": ORDERS,
            "delivered": ORDERS,
            "opens": 1,
        }
        account = (await api.get("/mailstream/v1/stats", headers=headers)).json()
        assert account["sent"] == ORDERS and account["scope"] == "account"

        unknown = await api.get("/mailstream/v1/stats", headers=headers, params={"triggerId": str(uuid.uuid4())})
        assert unknown.status_code == 404
        other = {"Authorization": f"Bearer {new_account('trigger-stats-other')}"}
        assert (await api.get("/mailstream/v1/stats", headers=other, params=by_rule)).status_code == 404
        both = await api.get("/mailstream/v1/stats", headers=headers, params={**by_rule, "emailId": email_id})
        assert both.status_code == 400
    finally:
        if rule is not None:
            await api.delete(f"/mailstream/v1/triggers/{rule['id']}", headers=headers)
        await kit.delete_topic(topic)

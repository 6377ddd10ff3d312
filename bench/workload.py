"""The benchmark's workload: a 20 KB HTML receipt with 10 line items, sent by one bench account
from its own sending domain (bench-<hex>.mailstream.test), added through the domain settings API,
published by the local stack's DNS server and verified, so the sender signs with its DKIM key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

GATEWAY = "http://127.0.0.1:8080"
MAILSTREAM_CLI = Path(sys.executable).with_name("mailstream")
DATABASE_URL = os.environ.get("MAILSTREAM_DATABASE_URL", "postgresql://mailstream:mailstream@127.0.0.1:5432/mailstream")
MESSAGE_BYTES = 20 * 1024
REPO = Path(__file__).resolve().parents[1]


def receipt_html() -> str:
    """A 20 KB HTML order receipt with a loop over 10 line items."""
    rows = (
        "{% for item in custom['items'] %}<tr><td style=\"padding:4px 8px;border-bottom:1px solid #eee\">"
        '{{ item.name }}</td><td>{{ item.qty }}</td><td align="right">{{ item.price }}</td></tr>{% endfor %}'
    )
    filler = "".join(
        f'<p style="color:#555;font:14px/1.5 Arial,sans-serif">Paragraph {n} of our terms: returns are accepted '
        "within 30 days of delivery in their original packaging. Refunds reach the original payment method "
        'within 5 business days. See <a href="https://shop.example/help/returns">returns</a>.</p>'
        for n in range(60)
    )
    html = (
        '<!doctype html><html><body><table width="600" align="center">'
        "<tr><td><h1>Thanks for your order, {{ contact.firstname }}!</h1>"
        "<p>Order {{ custom.order_id }} is confirmed.</p>"
        f"<table>{rows}</table>"
        '<p><a href="https://shop.example/orders/{{ custom.order_id }}">View your order</a></p>'
        f"{filler}</td></tr></table></body></html>"
    )
    return html[: MESSAGE_BYTES - 200] if len(html) > MESSAGE_BYTES else html + " " * (MESSAGE_BYTES - len(html))


def line_items() -> list[dict]:
    return [{"name": f"Product {n}", "qty": n % 3 + 1, "price": f"{9.99 + n:.2f}"} for n in range(10)]


def line_items_json() -> str:
    """customProperties.items as the load generator sends it."""
    return json.dumps(line_items(), separators=(",", ":"))


@dataclass(frozen=True)
class BenchAccount:
    account_id: int
    api_key: str
    email_id: int


def post(path: str, api_key: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        GATEWAY + path,
        data=json.dumps(body or {}).encode(),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read() or b"{}")


def create_account() -> tuple[int, str]:
    done = subprocess.run(
        [str(MAILSTREAM_CLI), "accounts", "create", "bench"], check=True, capture_output=True, text=True
    )
    account_id = int(re.search(r"created account (\d+)", done.stderr).group(1))
    return account_id, done.stdout.strip()


def verified_sending_domain(api_key: str) -> str:
    """A new sending domain of the account, its records served by the stack's DNS as `make run`
    serves the demo domain's (under one name, "bench", replaced each run), verified."""
    domain = f"bench-{uuid.uuid4().hex[:8]}.mailstream.test"
    view = post("/mailstream/v1/sending-domains", api_key, {"domain": domain})
    stack = str(REPO / "deploy/local/stack.sh")
    subprocess.run([stack, "dns-publish", "bench"], input=json.dumps(view), text=True, check=True, timeout=60)
    verified = post(f"/mailstream/v1/sending-domains/{domain}/verify", api_key)
    if not verified["verified"]:
        raise SystemExit(f"the bench's sending domain did not verify: {verified['records']}")
    return domain


def prepare_account() -> BenchAccount:
    """A fresh account, its verified sending domain, and the receipt converted to the single-send API.
    Before the sender's restart (it caches a domain's key for 300 s)."""
    account_id, api_key = create_account()
    domain = verified_sending_domain(api_key)
    email = {
        "name": "Benchmark receipt",
        "subject": "Your order {{ custom.order_id }}",
        "fromName": "Shop",
        "fromEmail": f"orders@{domain}",
        "html": receipt_html(),
        "subscriptionType": "TRANSACTIONAL",
    }
    email_id = post("/mailstream/v1/emails", api_key, email)["emailId"]
    post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", api_key)
    return BenchAccount(account_id, api_key, email_id)

"""Every metric the alert rules and the Grafana dashboard name is one a running service exports:
a panel or an alert on a metric nobody exports fails here rather than staying empty in production."""

import httpx
from monitoring import named_metrics
from prometheus_client.parser import text_string_to_metric_families

SERVICES = {
    "gateway": "http://127.0.0.1:8080/metrics",
    "renderer": "http://127.0.0.1:8081/metrics",
    "sender": "http://127.0.0.1:8082/metrics",
    "tracker": "http://127.0.0.1:8090/metrics",
}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}


async def exported() -> set[str]:
    names: set[str] = set()
    async with httpx.AsyncClient(timeout=5) as client:
        for url in SERVICES.values():
            text = (await client.get(url)).text
            for family in text_string_to_metric_families(text):
                names.add(family.name)
                names.update(family.name + s for s in SUFFIXES.get(family.type, ()))
    return names


async def test_every_metric_named_by_an_alert_or_a_panel_is_exported():
    missing = sorted(named_metrics() - await exported())
    assert missing == []

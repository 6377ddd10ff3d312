"""The gateway counts answers by route template and status, and knows when its SMTP certificate expires."""

import datetime as dt

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from mailstream.gateway.http_metrics import HttpMetrics
from mailstream.gateway.smtp.server import certificate_expiry, self_signed_pem

pytestmark = pytest.mark.unit


def count(method, route, status):
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("mailstream_gateway_http_requests_total", labels) or 0


def test_answers_are_counted_by_route_template_not_by_path():
    app = FastAPI()
    app.add_middleware(HttpMetrics)

    @app.get("/things-metrics-test/{thing_id}")
    async def thing(thing_id: int):
        if thing_id == 0:
            raise HTTPException(409)
        return {"id": thing_id}

    before_ok, before_conflict = (
        count("GET", "/things-metrics-test/{thing_id}", 200),
        count("GET", "/things-metrics-test/{thing_id}", 409),
    )
    before_unmatched = count("GET", "unmatched", 404)
    with TestClient(app) as client:
        for thing_id in (1, 2, 3, 0):
            client.get(f"/things-metrics-test/{thing_id}")
        client.get("/no-such-route")
    assert count("GET", "/things-metrics-test/{thing_id}", 200) == before_ok + 3
    assert count("GET", "/things-metrics-test/{thing_id}", 409) == before_conflict + 1
    assert count("GET", "unmatched", 404) == before_unmatched + 1


def test_the_certificate_expiry_is_its_not_after():
    cert, _ = self_signed_pem("smtp.example")
    expires = dt.datetime.fromtimestamp(certificate_expiry(cert), dt.UTC)
    assert dt.datetime.now(dt.UTC) < expires < dt.datetime.now(dt.UTC) + dt.timedelta(days=3660)

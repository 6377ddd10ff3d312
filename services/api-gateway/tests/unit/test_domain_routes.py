"""The domain settings routes without sockets: in /openapi.json with their models, 401 before any I/O."""

import httpx

from mailstream.gateway.app import create_app
from mailstream.gateway.deps import Dependencies
from mailstream.gateway.kafka_link import KafkaLink

DOMAINS = "/mailstream/v1/sending-domains"


class NoPool:
    def __getattr__(self, name):
        raise AssertionError(f"the database was used ({name})")


def client() -> httpx.AsyncClient:
    app = create_app(Dependencies(pool=NoPool(), kafka=KafkaLink(bootstrap="unused:1")))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_the_routes_are_in_openapi_with_response_models_and_the_error_shape():
    async with client() as api:
        schema = (await api.get("/openapi.json")).json()
    paths = schema["paths"]
    assert set(paths[DOMAINS]) == {"get", "post"}
    assert set(paths[DOMAINS + "/{domain}"]) == {"get", "delete"}
    assert set(paths[DOMAINS + "/{domain}/verify"]) == {"post"}
    assert set(paths["/mailstream/v1/ips"]) == {"get", "put", "delete"}
    created = paths[DOMAINS]["post"]["responses"]
    assert created["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/SendingDomainView")
    assert {"400", "401", "409"} <= set(created)
    record = schema["components"]["schemas"]["DnsRecordView"]["properties"]
    assert {"type", "host", "value", "required", "status", "reason"} <= set(record)
    assert "privateKey" not in str(schema).replace("_", "") and "private" not in str(schema["components"])


async def test_every_domain_and_ip_route_answers_401_without_a_key_before_any_io():
    async with client() as api:
        for method, path, body in (
            ("POST", DOMAINS, {"domain": "shop.example"}),
            ("GET", DOMAINS, None),
            ("GET", f"{DOMAINS}/shop.example", None),
            ("POST", f"{DOMAINS}/shop.example/verify", None),
            ("DELETE", f"{DOMAINS}/shop.example", None),
            ("GET", "/mailstream/v1/ips", None),
            ("PUT", "/mailstream/v1/ips", {"pool": "pair"}),
            ("DELETE", "/mailstream/v1/ips", None),
        ):
            reply = await api.request(method, path, json=body)
            assert reply.status_code == 401 and reply.json()["category"] == "INVALID_AUTHENTICATION", (method, path)

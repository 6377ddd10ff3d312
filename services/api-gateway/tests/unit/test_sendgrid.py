"""SendGrid's Mail Send request: validation (every unsupported field a 400 naming it), its
mapping to whole messages and sends, dynamic templates in the sandbox, and the accept path
(Acceptor.send_many: one transaction and one produce call for all personalizations)."""

from __future__ import annotations

import base64
import copy
from email import message_from_bytes
from email.policy import SMTP

import pytest
from test_acceptor import ACCOUNT, EMAIL, Kafka, MemoryStore

from mailstream.gateway.caches import Caches
from mailstream.gateway.handlers import Acceptor
from mailstream.gateway.sendgrid import mapping
from mailstream.gateway.sendgrid.errors import SendGridError
from mailstream.gateway.sendgrid.request import parse
from mailstream.gateway.sendgrid.templates import TemplateFailed, compile_version, render

NOW = 1_800_000_000
PDF = base64.b64encode(b"%PDF-1.4 receipt").decode()


def body(**extra) -> dict:
    b = {
        "personalizations": [{"to": [{"email": "jane@example.com", "name": "Jane"}]}],
        "from": {"email": "orders@shop.example", "name": "Shop"},
        "subject": "Your receipt",
        "content": [{"type": "text/plain", "value": "Thanks"}, {"type": "text/html", "value": "<p>Thanks</p>"}],
    }
    b.update(extra)
    return b


def errors_of(b: dict) -> list[dict]:
    with pytest.raises(SendGridError) as caught:
        parse(b, now=NOW)
    assert caught.value.status == 400
    return caught.value.errors


def fields_of(b: dict) -> set[str]:
    return {e["field"] for e in errors_of(b)}


class TestUnsupportedFields:
    @pytest.mark.parametrize(
        ("extra", "field"),
        [
            ({"asm": {"group_id": 1}}, "asm"),
            ({"ip_pool_name": "pool"}, "ip_pool_name"),
            ({"sections": {"-s-": "x"}}, "sections"),
            ({"mail_settings": {"footer": {"enable": True}}}, "mail_settings.footer"),
            ({"mail_settings": {"bypass_list_management": {"enable": True}}}, "mail_settings.bypass_list_management"),
            ({"mail_settings": {"spam_check": {"enable": True}}}, "mail_settings.spam_check"),
            (
                {"tracking_settings": {"subscription_tracking": {"enable": True}}},
                "tracking_settings.subscription_tracking",
            ),
            ({"tracking_settings": {"ganalytics": {"enable": True}}}, "tracking_settings.ganalytics"),
            (
                {"tracking_settings": {"click_tracking": {"enable": True, "enable_text": True}}},
                "tracking_settings.click_tracking.enable_text",
            ),
            (
                {"tracking_settings": {"open_tracking": {"enable": True, "substitution_tag": "%o%"}}},
                "tracking_settings.open_tracking.substitution_tag",
            ),
        ],
    )
    def test_an_unsupported_field_is_a_400_naming_it(self, extra, field):
        errors = errors_of(body(**extra))
        assert [e["field"] for e in errors] == [field]
        assert "not supported" in errors[0]["message"] and errors[0]["help"].endswith("#not-supported")

    def test_an_unsupported_content_type_is_named(self):
        b = body(content=[{"type": "text/calendar", "value": "BEGIN:VCALENDAR"}])
        (e,) = errors_of(b)
        assert e["field"] == "content[0].type" and "text/calendar content is not supported" in e["message"]

    def test_unknown_fields_are_refused_not_ignored(self):
        b = body(surprise=1)
        b["personalizations"][0]["nope"] = 2
        assert fields_of(b) == {"surprise", "personalizations[0].nope"}


class TestValidation:
    def test_a_minimal_request_is_read(self):
        mail = parse(body(), now=NOW)
        assert mail.personalizations[0].to[0].email == "jane@example.com"
        assert (mail.text, mail.html, mail.track_opens, mail.sandbox) == ("Thanks", "<p>Thanks</p>", True, False)

    def test_every_problem_is_listed_with_its_field(self):
        b = body(**{"from": {"email": "not an address"}, "subject": None})
        b["personalizations"] = [{"to": []}, {"to": [{"email": "a@example.com"}], "cc": [{"email": "A@example.com"}]}]
        assert fields_of(b) == {"from.email", "personalizations[0].to", "personalizations[1]", "subject"}

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"personalizations": []}, "personalizations"),
            ({"personalizations": [{"to": [{"email": f"r{i}@example.com"}]} for i in range(1001)]}, "personalizations"),
            ({"from": None}, "from.email"),
            ({"content": None}, "content"),
            (
                {"content": [{"type": "text/html", "value": "<p/>"}, {"type": "text/plain", "value": "x"}]},
                "content[1].type",
            ),
            ({"template_id": "d-5"}, "content"),
            ({"template_id": "d-0a1b2c"}, "template_id"),
            ({"attachments": [{"content": "%%%", "filename": "a.pdf"}]}, "attachments[0].content"),
            (
                {"attachments": [{"content": PDF, "filename": "a.png", "disposition": "inline"}]},
                "attachments[0].content_id",
            ),
            ({"headers": {"Subject": "forged"}}, "headers.Subject"),
            ({"headers": {"X-Mailstream-ID": "x"}}, "headers.X-Mailstream-ID"),
            ({"headers": {"X-Ok": "a\r\nBcc: b@example.com"}}, "headers.X-Ok"),
            ({"send_at": NOW + 73 * 3600}, "send_at"),
            ({"categories": [f"c{i}" for i in range(11)]}, "categories"),
            ({"custom_args": {"n": 1}}, "custom_args.n"),
            ({"reply_to": {"email": "a@example.com"}, "reply_to_list": [{"email": "b@example.com"}]}, "reply_to_list"),
            ({"mail_settings": {"sandbox_mode": {"enable": "yes"}}}, "mail_settings.sandbox_mode.enable"),
        ],
    )
    def test_a_bad_field_is_a_400_naming_it(self, change, field):
        assert field in fields_of(body(**change))

    def test_more_than_1000_recipients_in_all_is_refused(self):
        b = body(
            personalizations=[
                {"to": [{"email": f"r{i}@example.com"}, {"email": f"s{i}@example.com"}]} for i in range(501)
            ]
        )
        assert fields_of(b) == {"personalizations"}

    def test_a_name_with_a_line_break_cannot_add_a_header(self):
        b = body(**{"from": {"email": "orders@shop.example", "name": "Shop\r\nBcc: x@example.com"}})
        assert fields_of(b) == {"from.name"}


def build(b: dict, **kw) -> list:
    return mapping.commands(parse(b, now=NOW), x_message_id="m-1", template=None, require_sending_domain=False, **kw)


class TestMapping:
    def test_one_send_per_personalization_with_its_recipients_args_and_send_id(self):
        b = body(custom_args={"order": "1001", "shop": "eu"}, send_at=NOW + 60)
        b["personalizations"] = [
            {"to": [{"email": "a@example.com"}, {"email": "b@example.com"}], "cc": [{"email": "c@example.com"}],
             "bcc": [{"email": "d@example.com"}], "custom_args": {"order": "1002"}},
            {"to": [{"email": "e@example.com"}], "send_at": NOW + 120},
        ]  # fmt: skip
        b["categories"] = ["receipt", "eu"]
        *firsts, second = build(b)
        # one send per recipient: to, cc and bcc alike, each its own status, checks and events
        assert [(c.to, c.cc, c.bcc) for c in firsts] == [(f"{r}@example.com", (), ()) for r in "abcd"]
        assert [c.send_id for c in (*firsts, second)] == ["m-1.0.0", "m-1.0.1", "m-1.0.2", "m-1.0.3", "m-1.1.0"]
        assert all(c.custom_args == {"order": "1002", "shop": "eu"} for c in firsts)
        assert second.custom_args == {"order": "1001", "shop": "eu"}
        assert all(c.categories == ("receipt", "eu") for c in (*firsts, second))
        assert {c.send_at.timestamp() for c in firsts} == {NOW + 60} and second.send_at.timestamp() == NOW + 120
        assert firsts[0].from_ == "Shop <orders@shop.example>" and firsts[0].email_id is None
        assert len({c.raw_message for c in firsts}) == 1  # the personalization's one message
        msg = message_from_bytes(firsts[0].raw_message, policy=SMTP)
        assert msg["To"] == "a@example.com, b@example.com" and msg["Cc"] == "c@example.com"
        assert msg["Bcc"] is None and msg["Subject"] == "Your receipt"

    def test_the_message_has_its_parts_attachments_and_headers(self):
        b = body(
            attachments=[
                {"content": PDF, "filename": "receipt.pdf", "type": "application/pdf"},
                {
                    "content": PDF,
                    "filename": "logo.png",
                    "type": "image/png",
                    "disposition": "inline",
                    "content_id": "logo",
                },
            ],
            headers={"X-Order": "1001"},
            categories=["receipts", "eu"],
            tracking_settings={"open_tracking": {"enable": False}},
            reply_to={"email": "help@shop.example", "name": "Hélène"},
            subject="Reçu n° 1001",
        )
        (cmd,) = build(b)
        msg = message_from_bytes(cmd.raw_message, policy=SMTP)
        assert msg.get_content_type() == "multipart/mixed"
        assert msg["Subject"] == "Reçu n° 1001" and msg["X-Order"] == "1001"
        assert msg["Reply-To"] == "Hélène <help@shop.example>"
        assert not [k for k in msg.keys() if k.startswith("X-Mailstream-") and k != "X-Mailstream-Tracking"]
        assert cmd.categories == ("receipts", "eu")  # on the records, not in the message
        assert msg["X-Mailstream-Tracking"] == "opens=off; clicks=on"
        parts = {p.get_content_type(): p for p in msg.walk()}
        assert parts["application/pdf"].get_filename() == "receipt.pdf"
        assert parts["application/pdf"].get_content() == b"%PDF-1.4 receipt"
        assert parts["image/png"]["Content-ID"] == "<logo>" and "multipart/related" in parts
        assert parts["text/html"].get_content() == "<p>Thanks</p>"
        assert parts["text/plain"].get_content() == "Thanks"

    def test_substitutions_replace_their_keys_in_subject_and_content(self):
        b = body(subject="Hi -name-", content=[{"type": "text/html", "value": "<p>-name-, order -id-</p>"}])
        b["personalizations"] = [{"to": [{"email": "a@example.com"}], "substitutions": {"-name-": "Ann", "-id-": "7"}}]
        (cmd,) = build(b)
        msg = message_from_bytes(cmd.raw_message, policy=SMTP)
        assert msg["Subject"] == "Hi Ann" and msg.get_content() == "<p>Ann, order 7</p>"

    def test_the_same_idempotency_key_gives_the_same_ids(self):
        assert mapping.message_id_of(ACCOUNT, "k1") == mapping.message_id_of(ACCOUNT, "k1")
        assert mapping.message_id_of(ACCOUNT, "k1") != mapping.message_id_of(ACCOUNT + 1, "k1")
        assert mapping.message_id_of(ACCOUNT, None) != mapping.message_id_of(ACCOUNT, None)

    def test_an_oversize_message_is_413(self):
        big = base64.b64encode(b"x" * (mapping.MAX_MESSAGE_BYTES)).decode()
        with pytest.raises(SendGridError) as caught:
            build(body(attachments=[{"content": big, "filename": "big.bin"}]))
        assert caught.value.status == 413 and "too large" in caught.value.errors[0]["message"]


class TestDynamicTemplates:
    def compiled(self, html: str, subject: str = "Order {{order.id}}"):
        return compile_version(1, hash(html) % 10_000, subject, html, None)

    def test_handlebars_style_values_render_escaped_and_missing_ones_empty(self):
        out = render(
            self.compiled("<p>Hi {{name}}{{missing}} {{ custom.name }}</p>"), {"name": "<b>Jo</b>", "order": {"id": 7}}
        )
        assert out.subject == "Order 7"
        assert out.html == "<p>Hi &lt;b&gt;Jo&lt;/b&gt; &lt;b&gt;Jo&lt;/b&gt;</p>"
        assert out.text == "Hi <b>Jo</b> <b>Jo</b>"

    def test_the_sandbox_limits_apply(self):
        with pytest.raises(TemplateFailed, match="limit"):
            render(self.compiled("{% for a in range(200) %}{% for b in range(200) %}x{% endfor %}{% endfor %}"), {})
        # Python internals stay out of reach: the sandbox makes them undefined (rendered empty)
        assert render(self.compiled("<p>{{ name.__class__.__mro__ }}</p>"), {"name": "x"}).html == "<p></p>"

    def test_a_template_send_renders_each_personalization(self):
        b = body(template_id="d-1", content=None, subject=None)
        b["personalizations"] = [
            {"to": [{"email": f"r{i}@example.com"}], "dynamic_template_data": {"order": {"id": i}}} for i in range(3)
        ]
        template = mapping.Template(1, 3, self.compiled("<p>{{order.id}}</p>"), ())
        cmds = mapping.commands(parse(b, now=NOW), x_message_id="m", template=template, require_sending_domain=True)
        subjects = [message_from_bytes(c.raw_message, policy=SMTP)["Subject"] for c in cmds]
        assert subjects == ["Order 0", "Order 1", "Order 2"]
        assert {c.email_id for c in cmds} == {1} and all(c.require_sending_domain for c in cmds)

    def test_substitutions_need_a_legacy_send_not_a_template(self):
        b = body(template_id="d-1", content=None)
        b["personalizations"][0]["substitutions"] = {"-a-": "b"}
        assert fields_of(b) == {"personalizations[0].substitutions"}


class TestAccepting:
    async def test_all_personalizations_go_in_one_transaction_and_one_produce_call(self):
        store, kafka = MemoryStore(), Kafka()
        acceptor = Acceptor(store, kafka.publish_all, Caches(api_key_ttl_s=0))
        b = body(personalizations=[{"to": [{"email": f"r{i}@example.com"}]} for i in range(100)])
        decided = await acceptor.send_many(
            ACCOUNT,
            build(
                b,
            ),
        )
        assert store.transactions == 1 and len(kafka.calls) == 1 and len(kafka.calls[0]) == 100
        assert all(p.event is not None and p.event.raw_message for p in decided)
        again = await acceptor.send_many(ACCOUNT, build(copy.deepcopy(b)))  # the same ids: nothing new
        assert len(kafka.calls) == 1 and len(again) == 100

    async def test_a_template_send_is_checked_by_the_emails_rules(self):
        store, kafka = MemoryStore(), Kafka()
        acceptor = Acceptor(store, kafka.publish_all, Caches(api_key_ttl_s=0))
        b = body(template_id=f"d-{EMAIL.id}", content=None)
        template = mapping.Template(EMAIL.id, 3, compile_version(EMAIL.id, 3, "s", "<p>x</p>", None), ())
        cmds = mapping.commands(parse(b, now=NOW), x_message_id="t", template=template, require_sending_domain=False)
        (p,) = await acceptor.send_many(ACCOUNT, cmds)
        assert p.event.email_id == EMAIL.id and p.event.email_version == EMAIL.current_version
        assert p.row.send_result is None and p.event.custom_args == {}

    async def test_a_role_address_ends_with_its_send_result_and_is_not_published(self):
        store, kafka = MemoryStore(), Kafka()
        acceptor = Acceptor(store, kafka.publish_all, Caches(api_key_ttl_s=0))
        b = body(personalizations=[{"to": [{"email": "noreply@example.com"}]}, {"to": [{"email": "ok@example.com"}]}])
        refused, ok = await acceptor.send_many(ACCOUNT, build(b))
        assert refused.row.send_result == "INVALID_TO_ADDRESS" and refused.event is None
        assert ok.event is not None and len(kafka.calls[0]) == 1

    async def test_a_send_at_in_the_future_is_scheduled_not_published(self):
        store, kafka = MemoryStore(), Kafka()
        acceptor = Acceptor(store, kafka.publish_all, Caches(api_key_ttl_s=0))
        b = body(send_at=NOW + 3600)
        b["personalizations"].append({"to": [{"email": "now@example.com"}], "send_at": 1})  # in the past: now
        later, now = await acceptor.send_many(ACCOUNT, build(b))
        assert later.scheduled and later.row.send_at.timestamp() == NOW + 3600
        assert not now.scheduled and [len(c) for c in kafka.calls] == [1]


class TestRoute:
    """The route through the app without sockets: SendGrid's shapes and codes, the accept path."""

    def client(self, scopes=frozenset({"send"}), publish=None):
        import httpx

        from mailstream.gateway.app import create_app
        from mailstream.gateway.deps import Dependencies
        from mailstream.gateway.kafka_link import KafkaLink
        from mailstream.gateway.keys import KeyGrant, hash_api_key

        self.store, self.kafka = MemoryStore(), Kafka()
        caches = Caches(api_key_ttl_s=60)
        caches.listening = True  # as once the invalidation listener runs
        caches.remember_key(hash_api_key("good-key"), KeyGrant(ACCOUNT, 1, frozenset(scopes)))
        deps = Dependencies(
            pool=object(),
            kafka=KafkaLink(bootstrap="unused:1"),
            caches=caches,
            acceptor=Acceptor(self.store, publish or self.kafka.publish_all, caches),
        )
        app = create_app(deps)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")

    KEY = {"Authorization": "Bearer good-key"}

    async def test_a_valid_request_is_202_with_its_message_id_after_kafka(self):
        async with self.client() as api:
            reply = await api.post("/v3/mail/send", json=body(), headers=self.KEY)
        assert reply.status_code == 202 and reply.content == b"" and reply.headers["X-Message-Id"]
        assert len(self.kafka.calls) == 1 and len(self.store.rows) == 1

    async def test_errors_are_in_sendgrid_shape(self):
        async with self.client() as api:
            no_key = await api.post("/v3/mail/send", json=body())
            bad = await api.post("/v3/mail/send", json=body(batch_id="not a batch id"), headers=self.KEY)
            not_json = await api.post("/v3/mail/send", content=b"{", headers=self.KEY)
            big = await api.post(
                "/v3/mail/send", content=b"{}", headers={**self.KEY, "Content-Length": str(31 * 1024 * 1024)}
            )
        assert no_key.status_code == 401 and set(no_key.json()["errors"][0]) == {"message", "field", "help"}
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "batch_id"
        assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["errors"][0]["message"]
        assert big.status_code == 413
        assert self.kafka.calls == []

    async def test_a_key_without_the_send_scope_is_403(self):
        async with self.client(scopes={"tokens"}) as api:
            reply = await api.post("/v3/mail/send", json=body(), headers=self.KEY)
        assert reply.status_code == 403 and reply.json() == {
            "errors": [{"message": "access forbidden", "field": None, "help": None}]
        }

    async def test_sandbox_mode_answers_200_and_sends_nothing(self):
        async with self.client() as api:
            reply = await api.post(
                "/v3/mail/send", json=body(mail_settings={"sandbox_mode": {"enable": True}}), headers=self.KEY
            )
        assert reply.status_code == 200 and self.kafka.calls == [] and self.store.rows == {}

    async def test_kafka_down_is_503_with_nothing_recorded(self):
        from mailstream.gateway.kafka_link import KafkaUnavailable

        async def down(records):
            raise KafkaUnavailable("Kafka is not connected")

        async with self.client(publish=down) as api:
            reply = await api.post("/v3/mail/send", json=body(), headers=self.KEY)
        assert reply.status_code == 503 and reply.headers["Retry-After"] == "1"
        assert "nothing was sent" in reply.json()["errors"][0]["message"] and self.store.rows == {}

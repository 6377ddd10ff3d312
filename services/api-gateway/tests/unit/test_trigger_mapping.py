"""Trigger rules: validation, the filter, dotted paths, the mapping to a send and the sendId template."""

import io
import json
import struct

import fastavro
import pytest

from mailstream.gateway.rules import EmailFacts, RecipientFacts, refusal
from mailstream.gateway.triggers.decoding import Undecodable, decode, decode_json, registry_frame
from mailstream.gateway.triggers.mapping import MISSING, Mapped, PathError, Skipped, Unmappable, lookup, map_record
from mailstream.gateway.triggers.rule import RuleError, TriggerRule, parse_conditions, validate
from mailstream.schemas import SendResult

ORDER = {
    "order_id": "A-1001",
    "status": "paid",
    "customer": {"email": "jane@example.com", "first_name": "Jane", "vip": True},
    "items": [{"sku": "mug", "qty": 2, "price": "9.50"}, {"sku": "tea", "qty": 1, "price": "4.00"}],
    "total": 23.0,
}


def rule(**changes) -> TriggerRule:
    fields = dict(
        id="6f1c2b8e-0000-4000-8000-000000000001",
        account_id=7,
        source_topic="orders",
        record_format="JSON",
        email_id=42,
        recipient_field="customer.email",
        send_id_template="order-{{ order_id }}",
        contact_properties={"firstname": "customer.first_name", "vip": "customer.vip"},
        custom_properties={"order_id": "order_id", "items": "items", "total": "total"},
    )
    fields.update(changes)
    return TriggerRule(**fields)


class TestPaths:
    def test_a_dotted_path_reads_nested_fields_and_list_indexes(self):
        assert lookup(ORDER, "customer.email") == "jane@example.com"
        assert lookup(ORDER, "items.1.sku") == "tea"
        assert lookup(ORDER, "items") == ORDER["items"]

    def test_an_absent_step_is_missing(self):
        assert lookup(ORDER, "customer.phone") is MISSING
        assert lookup(ORDER, "items.5.sku") is MISSING

    def test_a_step_into_a_scalar_is_an_error(self):
        with pytest.raises(PathError):
            lookup(ORDER, "order_id.x")
        with pytest.raises(PathError):
            lookup(ORDER, "items.first")


class TestFilter:
    def test_equals_in_and_exists(self):
        r = rule(conditions=parse_conditions([{"field": "status", "equals": "paid"}]))
        assert isinstance(map_record(r, ORDER), Mapped)
        r = rule(conditions=parse_conditions([{"field": "status", "in": ["refunded", "void"]}]))
        assert isinstance(map_record(r, ORDER), Skipped)
        r = rule(conditions=parse_conditions([{"field": "customer.vip", "exists": True}]))
        assert isinstance(map_record(r, ORDER), Mapped)
        r = rule(conditions=parse_conditions([{"field": "coupon", "exists": True}]))
        assert isinstance(map_record(r, ORDER), Skipped)
        r = rule(conditions=parse_conditions([{"field": "coupon", "exists": False}]))
        assert isinstance(map_record(r, ORDER), Mapped)

    def test_every_condition_must_hold(self):
        conditions = parse_conditions([{"field": "status", "equals": "paid"}, {"field": "total", "equals": 1}])
        assert isinstance(map_record(rule(conditions=conditions), ORDER), Skipped)

    def test_a_filter_through_a_scalar_is_unmappable(self):
        r = rule(conditions=parse_conditions([{"field": "status.code", "equals": 1}]))
        outcome = map_record(r, ORDER)
        assert isinstance(outcome, Unmappable) and outcome.reason.startswith("filter:")

    @pytest.mark.parametrize(
        "raw",
        [[{"field": "a"}], [{"field": "a", "equals": 1, "in": [1]}], [{"field": "a", "in": 3}], [{"equals": 1}]],
    )
    def test_a_condition_needs_one_operator(self, raw):
        with pytest.raises(RuleError):
            parse_conditions(raw)


class TestMapping:
    def test_a_record_becomes_a_send_of_the_rule_with_its_line_items(self):
        outcome = map_record(rule(), ORDER)
        assert isinstance(outcome, Mapped)
        cmd = outcome.command
        assert (cmd.email_id, cmd.to, cmd.send_id, cmd.trigger_id) == (
            42,
            "jane@example.com",
            "order-A-1001",
            "6f1c2b8e-0000-4000-8000-000000000001",
        )
        assert cmd.contact_properties == {"firstname": "Jane", "vip": "true"}
        assert cmd.custom_properties == {"order_id": "A-1001", "items": ORDER["items"], "total": 23.0}
        assert cmd.require_single_send_api is False

    def test_a_missing_recipient_is_unmappable(self):
        record = {k: v for k, v in ORDER.items() if k != "customer"}
        assert map_record(rule(), record) == Unmappable("missing recipient field customer.email")

    def test_a_recipient_that_is_not_text_is_unmappable(self):
        outcome = map_record(rule(recipient_field="total"), ORDER)
        assert isinstance(outcome, Unmappable) and "not an address" in outcome.reason

    def test_a_record_that_is_not_an_object_is_unmappable(self):
        assert isinstance(map_record(rule(), [1, 2]), Unmappable)

    def test_absent_mapped_fields_are_left_out(self):
        outcome = map_record(rule(custom_properties={"coupon": "coupon"}), ORDER)
        assert outcome.command.custom_properties == {}


class TestSendIdTemplate:
    def test_the_send_id_is_rendered_from_the_record(self):
        r = rule(send_id_template="{{ customer.email }}/{{ order_id | lower }}")
        assert map_record(r, ORDER).command.send_id == "jane@example.com/a-1001"

    def test_an_undefined_field_is_unmappable(self):
        outcome = map_record(rule(send_id_template="order-{{ order_number }}"), ORDER)
        assert isinstance(outcome, Unmappable) and "order_number" in outcome.reason

    def test_the_sandbox_refuses_unsafe_attributes(self):
        r = rule(send_id_template="{{ order_id.__class__.__mro__ }}")
        outcome = map_record(r, ORDER)
        assert isinstance(outcome, Unmappable) or "class" not in outcome.command.send_id

    def test_a_record_field_named_record_does_not_break_rendering(self):
        outcome = map_record(rule(send_id_template="x-{{ record.order_id }}"), {**ORDER, "record": 1})
        assert isinstance(outcome, Unmappable) or outcome.command.send_id

    def test_an_empty_send_id_is_unmappable(self):
        outcome = map_record(rule(send_id_template="{{ coupon | default('') }}"), ORDER)
        assert outcome == Unmappable("sendIdTemplate: rendered an empty sendId")


class TestValidation:
    def test_a_good_rule_passes(self):
        validate(rule())

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"source_topic": "email.send.requested"}, "sourceTopic"),
            ({"source_topic": "__consumer_offsets"}, "sourceTopic"),
            ({"source_topic": "has space"}, "sourceTopic"),
            ({"record_format": "AVRO"}, "avroSchema"),
            ({"avro_schema": '{"type": "string"}'}, "recordFormat"),
            ({"record_format": "AVRO", "avro_schema": '{"type": "nonsense"}'}, "avroSchema"),
            ({"recipient_field": "customer..email"}, "recipientField"),
            ({"send_id_template": "order-{{ order_id"}, "sendIdTemplate"),
            ({"send_id_template": "always-the-same"}, "sendIdTemplate"),
            ({"custom_properties": {"items": "items[0]"}}, "customProperties.items"),
        ],
    )
    def test_a_bad_rule_names_its_field(self, changes, field):
        with pytest.raises(RuleError) as caught:
            validate(rule(**changes), reserved_topics=frozenset({"email.send.requested"}))
        assert caught.value.field == field


class TestAutomationRule:
    def test_a_trigger_send_needs_an_email_saved_for_automation(self):
        saved = EmailFacts("DRAFT", False, "TRANSACTIONAL", automation=True)
        not_saved = EmailFacts("DRAFT", True, "TRANSACTIONAL", automation=False)
        kwargs = dict(require_single_send_api=False, to="jane@example.com", from_=None, recipient=RecipientFacts())
        assert refusal(email=saved, require_automation=True, **kwargs) is None
        assert refusal(email=not_saved, require_automation=True, **kwargs) is SendResult.MISSING_CONTENT


SCHEMA = {
    "type": "record",
    "name": "Order",
    "fields": [
        {"name": "order_id", "type": "string"},
        {"name": "email", "type": "string"},
        {"name": "items", "type": {"type": "array", "items": "string"}},
    ],
}


def avro_bytes(datum) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(SCHEMA), datum)
    return out.getvalue()


class FakeRegistry:
    def __init__(self, schemas):
        self.schemas, self.asked = schemas, []

    async def schema(self, url, schema_id):
        self.asked.append((url, schema_id))
        found = self.schemas.get(schema_id)
        return fastavro.parse_schema(found) if found else None


class TestDecoding:
    def test_bad_json_is_undecodable(self):
        with pytest.raises(Undecodable, match="bad JSON"):
            decode_json(b"{not json")
        with pytest.raises(Undecodable):
            decode_json(None)

    async def test_avro_with_an_inline_schema(self):
        r = rule(record_format="AVRO", avro_schema=json.dumps(SCHEMA))
        datum = {"order_id": "1", "email": "a@b.example", "items": ["x"]}
        assert await decode(r, avro_bytes(datum), FakeRegistry({})) == datum
        with pytest.raises(Undecodable, match="bad Avro"):
            await decode(r, b"\xff\xff\xff", FakeRegistry({}))

    async def test_avro_through_a_registry_reads_the_schema_id(self):
        r = rule(record_format="AVRO", schema_registry_url="http://registry.test")
        datum = {"order_id": "1", "email": "a@b.example", "items": []}
        framed = b"\x00" + struct.pack(">I", 5) + avro_bytes(datum)
        registry = FakeRegistry({5: SCHEMA})
        assert await decode(r, framed, registry) == datum
        assert registry.asked == [("http://registry.test", 5)]
        with pytest.raises(Undecodable, match="schema id 6"):
            await decode(r, b"\x00" + struct.pack(">I", 6) + avro_bytes(datum), registry)
        with pytest.raises(Undecodable, match="wire format"):
            registry_frame(avro_bytes(datum))


def test_a_patch_may_give_any_one_field_and_a_create_needs_the_rules_own():
    from pydantic import ValidationError

    from mailstream.gateway.trigger_models import TriggerCreate, TriggerFields

    assert TriggerFields(name="renamed").model_fields_set == {"name"}  # recipientField was required here
    with pytest.raises(ValidationError) as refused:
        TriggerCreate(name="x")
    assert {e["loc"][0] for e in refused.value.errors()} == {
        "sourceTopic",
        "emailId",
        "recipientField",
        "sendIdTemplate",
    }

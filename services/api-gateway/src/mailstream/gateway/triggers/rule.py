"""A trigger rule, its validation and its compiled parts. Pure: no I/O.

A rule reads records of one topic (JSON, or Avro with an inline schema or a Confluent-compatible
schema registry), keeps those its filter matches, and maps each to one send of its email:
the recipient from a dotted path, contact and custom properties from dotted paths (whole
arrays allowed: line items), and a sendId rendered from a sandboxed Jinja2 template.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import fastavro
from jinja2 import TemplateSyntaxError

from mailstream.core.sandbox import make_env
from mailstream.schemas import TOPICS

FORMATS = ("JSON", "AVRO")
PATH = re.compile(r"^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+){0,31}$")
TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
OPERATORS = ("equals", "in", "exists")
MAX_SEND_ID = 255
_SANDBOX = make_env(autoescape=False)  # the renderer's sandbox and work limits: a rule is customer input


class RuleError(ValueError):
    """A rule that cannot be used: `field` names the API field, `message` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True, slots=True)
class Condition:
    """`path` equals a value, is in a list of values, or exists (exists=False: is absent)."""

    path: str
    op: str
    value: Any = None

    def describe(self) -> dict[str, Any]:
        return {"field": self.path, self.op: self.value}


@dataclass(frozen=True)
class TriggerRule:
    id: str
    account_id: int
    source_topic: str
    record_format: str
    email_id: int
    recipient_field: str
    send_id_template: str
    name: str = ""
    avro_schema: str | None = None
    schema_registry_url: str | None = None
    conditions: tuple[Condition, ...] = ()
    contact_properties: dict[str, str] = field(default_factory=dict)
    custom_properties: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    version: str = ""  # changes whenever the rule changes (its updated_at): the consumer restarts

    @cached_property
    def send_id(self):
        return _SANDBOX.compile_template(self.send_id_template)

    @cached_property
    def parsed_schema(self):
        return fastavro.parse_schema(json.loads(self.avro_schema)) if self.avro_schema else None


def parse_conditions(raw: list[dict[str, Any]]) -> tuple[Condition, ...]:
    conditions = []
    for i, item in enumerate(raw):
        where = f"filter[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("field"), str):
            raise RuleError(where, "each condition is {'field': <dotted path>, and one of equals / in / exists}")
        ops = [op for op in OPERATORS if op in item]
        extra = set(item) - {"field", *OPERATORS}
        if len(ops) != 1 or extra:
            raise RuleError(where, "give exactly one of equals, in, exists (and nothing else)")
        check_path(f"{where}.field", item["field"])
        op, value = ops[0], item[ops[0]]
        if op == "in" and not isinstance(value, list):
            raise RuleError(f"{where}.in", "a list of values")
        if op == "exists" and not isinstance(value, bool):
            raise RuleError(f"{where}.exists", "true or false")
        conditions.append(Condition(item["field"], op, value))
    return tuple(conditions)


def check_path(where: str, path: Any) -> None:
    if not isinstance(path, str) or not PATH.match(path):
        raise RuleError(where, f"{path!r} is not a dotted path (e.g. customer.email, items, items.0.sku)")


def validate(rule: TriggerRule, *, reserved_topics: frozenset[str] | None = None) -> None:
    """Raises RuleError naming the first field that makes the rule unusable."""
    reserved = reserved_topics if reserved_topics is not None else frozenset(t.name for t in TOPICS)
    if not TOPIC.match(rule.source_topic):
        raise RuleError("sourceTopic", "a Kafka topic name: 1-249 of letters, digits, '.', '_', '-'")
    if rule.source_topic in reserved or rule.source_topic.startswith("__"):
        raise RuleError("sourceTopic", f"{rule.source_topic} is one of mailstream's own or Kafka's internal topics")
    if rule.record_format not in FORMATS:
        raise RuleError("recordFormat", "JSON or AVRO")
    if rule.record_format == "JSON" and (rule.avro_schema or rule.schema_registry_url):
        raise RuleError("recordFormat", "avroSchema and schemaRegistryUrl are for AVRO records only")
    if rule.record_format == "AVRO":
        if bool(rule.avro_schema) == bool(rule.schema_registry_url):
            raise RuleError("avroSchema", "AVRO records need exactly one of avroSchema and schemaRegistryUrl")
        if rule.avro_schema:
            try:
                rule.parsed_schema  # noqa: B018 (parsing is the check)
            except Exception as exc:
                raise RuleError("avroSchema", f"not a valid Avro schema: {exc}") from None
        if rule.schema_registry_url and not re.match(r"^https?://[^\s/]+(/\S*)?$", rule.schema_registry_url):
            raise RuleError("schemaRegistryUrl", "an http(s) URL of a Confluent-compatible schema registry")
    check_path("recipientField", rule.recipient_field)
    for kind, mapping in (("contactProperties", rule.contact_properties), ("customProperties", rule.custom_properties)):
        for name, path in mapping.items():
            if not name or len(name) > 100:
                raise RuleError(kind, "property names are 1-100 characters")
            check_path(f"{kind}.{name}", path)
    try:
        rule.send_id  # noqa: B018 (compiling is the check)
    except TemplateSyntaxError as exc:
        raise RuleError("sendIdTemplate", f"not a valid template: {exc.message}") from None
    if "{{" not in rule.send_id_template:
        raise RuleError("sendIdTemplate", "must name at least one field of the record, e.g. order-{{ order_id }}")

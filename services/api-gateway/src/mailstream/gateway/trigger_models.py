"""Request and response bodies of the automation trigger API (docs/automation.md), and the views."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mailstream.gateway.models import MAX_ID, EmailSendStatusView, StatsView, Timestamp
from mailstream.gateway.views import iso

Path = Field(min_length=1, max_length=500, description="a dotted path into the record: customer.email, items.0.sku")


class TriggerFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=255)
    sourceTopic: str | None = Field(default=None, min_length=1, max_length=249)
    recordFormat: Literal["JSON", "AVRO"] | None = None
    avroSchema: dict[str, Any] | list[Any] | str | None = Field(
        default=None, description="an inline Avro schema (AVRO records without a schema registry)"
    )
    schemaRegistryUrl: str | None = Field(
        default=None, max_length=2000, description="a Confluent-compatible schema registry (records in its wire format)"
    )
    filter: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=20,
        description="conditions that must all hold: {field, equals} | {field, in: [...]} | {field, exists: bool}",
    )
    emailId: int | None = Field(default=None, ge=1, le=MAX_ID, description="an email saved for automation")
    recipientField: str | None = Field(default=None, min_length=1, max_length=500, description=Path.description)
    contactProperties: dict[str, str] | None = Field(default=None, description="contact property -> dotted path")
    customProperties: dict[str, str] | None = Field(
        default=None, description="custom property -> dotted path (a whole array is allowed: line items)"
    )
    sendIdTemplate: str | None = Field(
        default=None, min_length=1, max_length=500, description="Jinja2 (sandboxed), e.g. order-{{ order_id }}"
    )
    enabled: bool | None = None


class TriggerCreate(TriggerFields):
    sourceTopic: str = Field(min_length=1, max_length=249)
    recordFormat: Literal["JSON", "AVRO"] = "JSON"
    emailId: int = Field(ge=1, le=MAX_ID, description="an email saved for automation")
    recipientField: str = Path
    sendIdTemplate: str = Field(min_length=1, max_length=500, description="e.g. order-{{ order_id }}")


class TriggerView(BaseModel):
    id: str
    name: str
    sourceTopic: str
    recordFormat: Literal["JSON", "AVRO"]
    avroSchema: dict[str, Any] | list[Any] | str | None = None
    schemaRegistryUrl: str | None = None
    filter: list[dict[str, Any]]
    emailId: int
    recipientField: str
    contactProperties: dict[str, str]
    customProperties: dict[str, str]
    sendIdTemplate: str
    enabled: bool
    consumerGroup: str
    createdAt: Timestamp
    updatedAt: Timestamp


class TriggerPage(BaseModel):
    results: list[TriggerView]


class TriggerStatusPage(BaseModel):
    results: list[EmailSendStatusView]
    paging: dict[str, Any] | None = None


class OutcomeCount(BaseModel):
    status: str
    sendResult: str | None = None
    count: int


class TriggerStatsView(BaseModel):
    triggerId: str
    requested: int = Field(description="sends the rule made (one per mapped record; a repeated sendId is not counted)")
    outcomes: list[OutcomeCount]
    statistics: StatsView = Field(
        description="the tracker's counters of the rule's sends (sent, delivered, opens, ...), "
        "as GET /mailstream/v1/stats?triggerId= gives them"
    )


def consumer_group(trigger_id: str) -> str:
    return f"mailstream-trigger-{trigger_id}"


def trigger_view(row: dict[str, Any]) -> dict[str, Any]:
    schema = row["avro_schema"]
    return {
        "id": row["id"],
        "name": row["name"],
        "sourceTopic": row["source_topic"],
        "recordFormat": row["record_format"],
        "avroSchema": json.loads(schema) if schema else None,
        "schemaRegistryUrl": row["schema_registry_url"],
        "filter": [{"field": c["field"], c["op"]: c.get("value")} for c in json.loads(row["filter"])],
        "emailId": row["email_id"],
        "recipientField": row["recipient_field"],
        "contactProperties": json.loads(row["contact_properties"]),
        "customProperties": json.loads(row["custom_properties"]),
        "sendIdTemplate": row["send_id_template"],
        "enabled": row["enabled"],
        "consumerGroup": consumer_group(row["id"]),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }

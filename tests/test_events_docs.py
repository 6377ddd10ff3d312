"""docs/events.md describes every field of every topic, with the type its schema gives it.

A topic's section is the `## ` heading that names it in backticks and its value record type after
" — " (e.g. ## `email.engagement` — `EngagementRecorded`). A heading may name a family of topics
with a placeholder, `email.rendered.retry.<n>`; the section must then say which `<n>` there are
("`<n>` = 1 to 4"), and those must be exactly the registry's. Each section has a
`| field | type | meaning |` table with one row per field of the record, the type written as
the .avsc has it (`long or null`, `array of string`, `enum `A`, `B``, ...), and a line with
the topic's partitions and retention.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from mailstream.schemas.codec import load_schema
from mailstream.schemas.topics import DAY_MS, TOPICS, TopicSpec

pytestmark = pytest.mark.unit

DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "events.md"
HEADING = re.compile(r"^## (.+?) — `(\w+)`\s*$")
PLACEHOLDER = "<n>"


@dataclasses.dataclass
class Section:
    heading: str
    topics: list[str]  # as the heading names them (a family with <n>)
    record: str
    text: str
    rows: dict[str, str]  # field -> type cell
    duplicates: list[str]


def sections(doc: str) -> list[Section]:
    found = []
    parts = re.split(r"^(?=## )", doc, flags=re.M)
    for part in parts:
        heading = part.split("\n", 1)[0]
        m = HEADING.match(heading)
        if not m:
            continue
        rows: dict[str, str] = {}
        duplicates = []
        for row in re.finditer(r"^\| `(\w+)` \| ([^|]+?) \|", part, flags=re.M):
            if row[1] in rows:
                duplicates.append(row[1])
            rows[row[1]] = row[2].strip()
        names = re.findall(r"`([\w.<>-]+)`", m[1])
        found.append(Section(heading, names, m[2], part, rows, duplicates))
    return found


def _family(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(name).replace(re.escape(PLACEHOLDER), r"(\d+)") + r"\Z")


def section_of(topic: str, all_sections: list[Section]) -> Section | None:
    def names(n: str) -> bool:
        return n == topic or (PLACEHOLDER in n and _family(n).match(topic) is not None)

    matches = [s for s in all_sections if any(names(n) for n in s.topics)]
    assert len(matches) <= 1, f"{topic}: described in more than one section: {[s.heading for s in matches]}"
    return matches[0] if matches else None


def avro_type(schema: Any) -> str:
    """The type column's words for an .avsc field type."""
    if isinstance(schema, list):
        others = [s for s in schema if s != "null"]
        assert len(others) == 1, schema
        return avro_type(others[0]) + (" or null" if "null" in schema else "")
    if isinstance(schema, dict):
        if "logicalType" in schema:
            return schema["logicalType"]
        kind = schema["type"]
        if kind == "enum":
            return "enum " + ", ".join(f"`{s}`" for s in schema["symbols"])
        if kind == "array":
            return "array of " + avro_type(schema["items"])
        if kind == "map":
            return "map of " + avro_type(schema["values"])
        return avro_type(kind)
    return schema


def days(ms: int) -> str:
    assert ms % DAY_MS == 0, f"{ms} ms is not whole days: teach this test how the page writes it"
    n = ms // DAY_MS
    return f"{n} day{'s' if n != 1 else ''}"


DOC = DOC_PATH.read_text()
SECTIONS = sections(DOC)


@pytest.mark.parametrize("spec", TOPICS, ids=lambda t: t.name)
def test_every_topic_has_a_section_with_its_record_key_partitions_and_retention(spec: TopicSpec):
    section = section_of(spec.name, SECTIONS)
    assert section is not None, (
        f"docs/events.md has no section for topic {spec.name}: add "
        f"## `{spec.name}` — `{spec.value_type.__name__}` with its key, partitions, retention and field table"
    )
    assert section.record == spec.value_type.__name__, (
        f"{spec.name}: the section {section.heading!r} names record {section.record}, "
        f"the topic carries {spec.value_type.__name__}"
    )
    text = " ".join(section.text.split())
    assert "Key:" in text, f"{spec.name}: the section says nothing of its key (a 'Key: ...' line)"
    partitions = f"{spec.partitions} partition{'s' if spec.partitions != 1 else ''}"
    assert re.search(rf"\b{partitions}\b", text), f"{spec.name}: the section does not say '{partitions}'"
    retention = f"{days(spec.retention_ms)} of retention"
    assert re.search(rf"\b{retention}\b", text), f"{spec.name}: the section does not say '{retention}'"
    if spec.compacted:
        assert "compacted" in text, f"{spec.name}: the section does not say the topic is compacted"


def test_a_topic_family_names_exactly_the_registry_topics():
    for section in SECTIONS:
        for name in section.topics:
            if PLACEHOLDER not in name:
                continue
            members = sorted(int(m[1]) for t in TOPICS if (m := _family(name).match(t.name)))
            assert members, f"{section.heading!r}: {name} names no topic of the registry"
            text = " ".join(section.text.split())
            said = re.search(rf"`{re.escape(PLACEHOLDER)}` = (\d+) to (\d+)", text)
            assert said, f"{section.heading!r}: say which {name} there are ('`{PLACEHOLDER}` = 1 to N')"
            assert list(range(int(said[1]), int(said[2]) + 1)) == members, (
                f"{section.heading!r}: the page says {PLACEHOLDER} = {said[1]} to {said[2]}, "
                f"the registry has {name.replace(PLACEHOLDER, '')}{members}"
            )


def test_every_heading_names_only_registry_topics():
    names = {t.name for t in TOPICS}
    for section in SECTIONS:
        for name in section.topics:
            assert name in names or PLACEHOLDER in name, f"{section.heading!r}: {name} is not a registry topic"


@pytest.mark.parametrize("spec", TOPICS, ids=lambda t: t.name)
def test_every_field_is_in_the_topic_table_with_its_avro_type(spec: TopicSpec):
    section = section_of(spec.name, SECTIONS)
    assert section is not None, f"docs/events.md has no section for topic {spec.name}"
    assert not section.duplicates, f"{spec.name}: fields described twice: {section.duplicates}"
    avro = {f["name"]: f["type"] for f in load_schema(spec.value_type)["fields"]}
    fields = [f.name for f in dataclasses.fields(spec.value_type)]
    missing = [f for f in fields if f not in section.rows]
    assert not missing, (
        f"{spec.name}: docs/events.md does not describe field(s) {', '.join(missing)} of "
        f"{spec.value_type.__name__}: add a row `| \\`name\\` | type | meaning |` for each"
    )
    unknown = [f for f in section.rows if f not in fields]
    record = spec.value_type.__name__
    assert not unknown, f"{spec.name}: docs/events.md describes field(s) {unknown} that {record} lacks"
    for name in fields:
        expected = avro_type(avro[name])
        assert section.rows[name] == expected, (
            f"{spec.name}: field {name} is typed {section.rows[name]!r} in docs/events.md, the schema says {expected!r}"
        )

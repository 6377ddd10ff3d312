from types import SimpleNamespace

from mailstream.core.faust_runtime import dead_letter_value
from mailstream.schemas import RecordDeadLettered, decode


def test_the_dead_letter_of_an_event_keeps_its_origin_key_value_and_reason():
    event = SimpleNamespace(
        key=b"k1", value=b"\x00garbage", message=SimpleNamespace(topic="email.delivery", partition=3, offset=41)
    )
    record = decode(dead_letter_value(event, service="tracker", reason="not Avro"), RecordDeadLettered)
    assert (record.service, record.source_topic, record.source_partition, record.source_offset) == (
        "tracker",
        "email.delivery",
        3,
        41,
    )
    assert (record.key, record.value, record.reason) == (b"k1", b"\x00garbage", "not Avro")

"""Log lines are one JSON object each, naming their service and carrying the fields given."""

import json
import logging

import pytest

from mailstream.core.logs import JsonFormatter

pytestmark = pytest.mark.unit


def test_a_line_names_its_service_and_carries_the_sends_ids():
    record = logging.LogRecord("mailstream.sender", logging.INFO, __file__, 1, "delivered %s", ("x",), None)
    record.fields = {"message_id": "m-1", "status_id": "s-1"}
    line = json.loads(JsonFormatter("sender").format(record))
    assert line["service"] == "sender" and line["msg"] == "delivered x"
    assert (line["message_id"], line["status_id"]) == ("m-1", "s-1")

"""Log lines are one JSON object each, naming their service and carrying the fields given."""

import json
import logging

import pytest

from mailstream.core.logs import SENDS, JsonFormatter, configure_logging, log_send

pytestmark = pytest.mark.unit


def test_a_line_names_its_service_and_carries_the_sends_ids():
    record = logging.LogRecord("mailstream.sender", logging.INFO, __file__, 1, "delivered %s", ("x",), None)
    record.fields = {"message_id": "m-1", "status_id": "s-1"}
    line = json.loads(JsonFormatter("sender").format(record))
    assert line["service"] == "sender" and line["msg"] == "delivered x"
    assert (line["message_id"], line["status_id"]) == ("m-1", "s-1")


@pytest.mark.parametrize("send_log", [True, False])
def test_log_send_writes_one_line_per_step_unless_turned_off(send_log, capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("renderer", "INFO", send_log=send_log)
        log_send("rendered", message_id="m-1", status_id="s-1")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        SENDS.setLevel(logging.NOTSET)
    if send_log:
        assert [(x["service"], x["msg"], x["message_id"], x["status_id"]) for x in lines] == [
            ("renderer", "rendered", "m-1", "s-1")
        ]
    else:
        assert lines == []

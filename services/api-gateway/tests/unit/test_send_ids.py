import uuid

from mailstream.gateway.handlers import send_ids


def test_a_send_id_always_gives_the_same_status_and_message_ids():
    assert send_ids(7, "order-1001") == send_ids(7, "order-1001")
    status_id, message_id = send_ids(7, "order-1001")
    assert status_id != message_id and uuid.UUID(status_id).version == 5


def test_the_same_send_id_in_another_account_gives_other_ids():
    assert set(send_ids(7, "order-1001")).isdisjoint(send_ids(8, "order-1001"))
    assert set(send_ids(7, "order-1001")).isdisjoint(send_ids(7, "order-1002"))


def test_without_a_send_id_every_send_gets_fresh_ids():
    assert send_ids(7, None) != send_ids(7, None)
    assert uuid.UUID(send_ids(7, None)[1]).version == 4

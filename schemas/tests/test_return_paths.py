"""VERP return paths name their message, survive a change of case, and cannot be forged."""

import uuid

import pytest

from mailstream.schemas.return_paths import ReturnPaths

pytestmark = pytest.mark.unit

KEYS = ("k1:0123456789abcdef0123",)


def test_the_address_leads_back_to_its_message_whatever_the_case():
    paths = ReturnPaths.from_setting(KEYS)
    message_id = str(uuid.uuid4())
    address = paths.address(message_id, "bounces.shop.example")
    local = address.partition("@")[0]
    assert len(local) <= 64 and local == local.lower() and local.replace("-", "").isalnum()
    assert paths.message_id(address) == message_id
    assert paths.message_id(address.upper()) == message_id
    assert paths.message_id(local) == message_id


def test_a_forged_or_altered_address_leads_nowhere():
    paths = ReturnPaths.from_setting(KEYS)
    local = paths.local_part(str(uuid.uuid4()))
    altered = local[:-1] + ("a" if local[-1] != "a" else "b")
    other_key = ReturnPaths.from_setting(("k2:fedcba9876543210fedc",))
    assert paths.message_id(altered) is None
    assert other_key.message_id(local) is None
    for junk in ("bounces", "b-", "b-" + "a" * 42, "b-!!" + local[4:], "postmaster@x.example"):
        assert paths.message_id(junk) is None


def test_rotation_verifies_with_every_key_and_signs_with_the_first():
    old = ReturnPaths.from_setting(KEYS)
    rotated = ReturnPaths.from_setting(("k2:fedcba9876543210fedc", *KEYS))
    message_id = str(uuid.uuid4())
    assert rotated.message_id(old.local_part(message_id)) == message_id
    assert old.message_id(rotated.local_part(message_id)) is None


def test_a_message_id_that_is_not_a_uuid_gets_no_verp_address():
    assert ReturnPaths.from_setting(KEYS).address("smtp-123", "bounces.shop.example") is None

import pytest

from mailstream.schemas.links import LinkKind, LinkSigner, TrackedLink

LINK = TrackedLink(LinkKind.CLICK, "m-1", 7, "jane@example.com", 42, None, "https://shop.example/o/1?a=b&c=d")


def signer(*entries):
    return LinkSigner.from_setting(entries)


def test_a_signed_link_verifies_to_what_it_carries():
    s = signer("k1:0123456789abcdef0123")
    assert s.verify(s.token(LINK)) == LINK
    assert s.url("http://t.example/", LINK).startswith("http://t.example/c/")


@pytest.mark.parametrize("position", [0, 5, -3])
def test_a_tampered_token_is_refused(position):
    s = signer("k1:0123456789abcdef0123")
    token = s.token(LINK)
    flipped = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
    assert s.verify(flipped) is None


def test_a_changed_target_url_is_refused():
    s = signer("k1:0123456789abcdef0123")
    other = s.token(TrackedLink(LinkKind.CLICK, "m-1", 7, "jane@example.com", 42, None, "https://evil.example"))
    payload_evil = other.split(".")[0]
    _, key_id, mac = s.token(LINK).split(".")
    assert s.verify(f"{payload_evil}.{key_id}.{mac}") is None


def test_rotation_old_links_verify_while_the_old_key_is_held():
    old = signer("k1:0123456789abcdef0123")
    rotated = signer("k2:fedcba9876543210fedc", "k1:0123456789abcdef0123")
    assert rotated.verify(old.token(LINK)) == LINK
    assert rotated.token(LINK).split(".")[1] == "k2"
    assert signer("k2:fedcba9876543210fedc").verify(old.token(LINK)) is None


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c.d", "!!!.k1.!!!", "e30.k1.AAAA"])
def test_garbage_is_refused(garbage):
    assert signer("k1:0123456789abcdef0123").verify(garbage) is None


def test_bad_key_settings_are_errors():
    with pytest.raises(ValueError):
        signer("nocolon")
    with pytest.raises(ValueError):
        signer("k1:short")

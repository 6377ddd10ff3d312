import pytest

from mailstream.schemas.links import LinkKind, LinkSigner, TrackedLink, static_links, unsigned_payload

pytestmark = pytest.mark.unit

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


# ---- format 2: compact binary payloads ---------------------------------------------------------

MESSAGE = "6f1c2b7e-3d4a-4b5c-8d9e-0a1b2c3d4e5f"
CLICK = TrackedLink(LinkKind.CLICK, MESSAGE, 7, "jane@example.com", 42, "tok-9", "https://shop.example/o/1?a=b&c=d", 3)


def test_a_uuid_message_id_is_written_in_format_2_and_verifies_to_what_it_carries():
    s = signer("k1:0123456789abcdef0123")
    token = s.token(CLICK)
    assert not token.startswith("WyJ")  # not the JSON format
    assert s.verify(token) == CLICK


def test_format_2_is_much_shorter_than_format_1():
    s = signer("k1:0123456789abcdef0123")
    v1 = s._token_v1(CLICK)
    assert len(s.token(CLICK)) < len(v1) * 0.75


@pytest.mark.parametrize(
    "link",
    [
        TrackedLink(LinkKind.OPEN, MESSAGE, 1, "a@b.example"),
        TrackedLink(LinkKind.UNSUBSCRIBE, MESSAGE, 2**40, "ünïcode@b.example", None, None, None, None),
        TrackedLink(LinkKind.CLICK, MESSAGE, 7, "a@b.example", 42, None, None, 1, 0),
        TrackedLink(LinkKind.CLICK, MESSAGE, 7, "a@b.example", 42, None, None, 1, 300),
        TrackedLink(LinkKind.CLICK, MESSAGE, 7, "a@b.example", None, "t", "https://x.example/é?q=1"),
        TrackedLink(LinkKind.OPEN, MESSAGE, 1, "a@b.example", annotated=True),
        TrackedLink(LinkKind.CLICK, MESSAGE, 7, "a@b.example", 42, None, None, 1, 3, annotated=True),
    ],
)
def test_format_2_round_trips_every_field(link):
    s = signer("k1:0123456789abcdef0123")
    assert s.verify(s.token(link)) == link


@pytest.mark.parametrize("position", [0, 3, 10, 30, -3])
def test_a_tampered_format_2_token_is_refused(position):
    s = signer("k1:0123456789abcdef0123")
    token = s.token(CLICK)
    flipped = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
    assert s.verify(flipped) is None


def test_a_format_1_token_still_verifies_after_format_2_exists():
    s = signer("k1:0123456789abcdef0123")
    legacy = s._token_v1(CLICK)
    assert s.verify(legacy) == TrackedLink(*[getattr(CLICK, f) for f in ("kind", "message_id", "account_id",
        "recipient", "email_id", "smtp_token_id", "url")])  # fmt: skip


def test_message_links_are_exactly_the_signers_tokens():
    s = signer("k1:0123456789abcdef0123")
    links = s.for_message(
        "http://t.example/", message_id=MESSAGE, account_id=7, recipient="jane@example.com", email_id=42,
        email_version=3, smtp_token_id="tok-9",
    )  # fmt: skip
    assert links.url(LinkKind.CLICK, target=CLICK.url) == s.url("http://t.example", CLICK)
    indexed = TrackedLink(LinkKind.CLICK, MESSAGE, 7, "jane@example.com", 42, "tok-9", None, 3, 5)
    assert links.url(LinkKind.CLICK, link=5) == s.url("http://t.example", indexed)
    legacy = s.for_message("http://t.example", message_id="not-a-uuid", account_id=7, recipient="j@example.com")
    parsed = s.verify(legacy.url(LinkKind.OPEN).rsplit("/", 1)[1])
    assert parsed == TrackedLink(LinkKind.OPEN, "not-a-uuid", 7, "j@example.com")


def test_an_annotated_message_s_links_say_so_and_the_flag_is_signed():
    s = signer("k1:0123456789abcdef0123")
    links = s.for_message("http://t.example/", message_id=MESSAGE, account_id=7, recipient="j@example.com",
                          annotated=True)  # fmt: skip
    token = links.url(LinkKind.OPEN).rsplit("/", 1)[1]
    assert s.verify(token) == TrackedLink(LinkKind.OPEN, MESSAGE, 7, "j@example.com", annotated=True)
    payload, key_id, mac = token.split(".")
    plain = unsigned_payload(TrackedLink(LinkKind.OPEN, MESSAGE, 7, "j@example.com"))
    assert plain != payload and s.verify(f"{plain}.{key_id}.{mac}") is None


def test_static_links_are_the_literal_absolute_targets_in_order_without_repeats():
    html = (
        "<a href=\"https://a.example/x?y=1&amp;z=2\">a</a> <A HREF='http://b.example'>b</A>"
        '<a href="https://a.example/x?y=1&amp;z=2">again</a> <a href="mailto:x@y.example">m</a>'
        '<a href="https://c.example/{{ custom.id }}">templated</a> <a href="/relative">r</a>'
        '<area shape="rect" href=" https://d.example/ ">'
    )
    assert static_links(html) == ("https://a.example/x?y=1&z=2", "http://b.example", "https://d.example/")

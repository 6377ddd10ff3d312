"""Open pixel and signed click links in HTML parts; what must be left alone is."""

import html as html_lib
import re

import pytest

from mailstream.renderer.tracking import Recipient, Tracker
from mailstream.schemas.links import LinkKind, LinkSigner

BASE = "https://t.example"
SIGNER = LinkSigner({"new": b"the-new-key-0123456789", "old": b"the-old-key-0123456789"})
WHO = Recipient("m-1", 42, "jane@example.com", email_id=7, smtp_token_id=None)
tracker = Tracker(SIGNER, BASE)


def hrefs(html: str) -> list[str]:
    return [html_lib.unescape(m) for m in re.findall(r'href="([^"]*)"', html)]


def verify(url: str):
    assert url.startswith(BASE + "/")
    return SIGNER.verify(url.rsplit("/", 1)[1])


def test_http_links_become_signed_click_links_carrying_the_target():
    out = tracker.track_html(
        "<a href=\"https://shop.example/p?a=1&amp;b=2\">P</a><a HREF='http://x.example'>X</a>", WHO
    )
    first, second = re.findall(r"""href=["']([^"']*)["']""", out, re.I)
    link = verify(first)
    assert link.kind is LinkKind.CLICK and link.url == "https://shop.example/p?a=1&b=2"
    assert (link.message_id, link.account_id, link.recipient, link.email_id) == ("m-1", 42, "jane@example.com", 7)
    assert verify(second).url == "http://x.example"


@pytest.mark.parametrize(
    "href",
    [
        "mailto:help@shop.example",
        "tel:+4712345678",
        "#section-2",
        "/relative/path",
        "javascript:alert(1)",
        f"{BASE}/u/some-unsubscribe-token",
    ],
)
def test_links_that_are_not_tracked_are_left_alone(href):
    html = f'<a href="{href}">x</a>'
    assert tracker.track_html(html, WHO).startswith(html)


@pytest.mark.parametrize(
    "html",
    [
        '<a data-mailstream-notrack href="https://shop.example">x</a>',
        '<a href="https://shop.example" data-mailstream-notrack>x</a>',
    ],
)
def test_an_anchor_can_opt_out(html):
    assert tracker.track_html(html, WHO).startswith(html)


def test_the_open_pixel_goes_before_the_closing_body_tag():
    out = tracker.track_html("<html><body><p>hi</p></BODY></html>", WHO)
    pixel = re.search(r'<img src="([^"]+)" width="1" height="1"', out)
    assert pixel and out.index(pixel.group(0)) < out.index("</BODY>")
    assert verify(pixel.group(1)).kind is LinkKind.OPEN


def test_without_a_body_tag_the_pixel_is_appended():
    out = tracker.track_html("<p>hi</p>", WHO)
    assert out.startswith("<p>hi</p><img src=")


def test_a_tampered_link_does_not_verify():
    url = tracker.link(LinkKind.CLICK, WHO, "https://shop.example")
    payload, key_id, mac = url.rsplit("/", 1)[1].split(".")
    assert SIGNER.verify(f"{payload[:-2]}xx.{key_id}.{mac}") is None


def test_links_signed_with_an_older_key_still_verify_after_rotation():
    old_signer = LinkSigner({"old": b"the-old-key-0123456789"})
    url = Tracker(old_signer, BASE).link(LinkKind.CLICK, WHO, "https://shop.example")
    assert verify(url).url == "https://shop.example"


@pytest.mark.parametrize(
    "who",
    [
        WHO,
        Recipient("m-2", 1, "zoë@exämple.com", None, "tok-9"),
        Recipient('quote"s', 2**62, "a\\b@example.com", 2**40, None),
    ],
)
@pytest.mark.parametrize("url", [None, "https://shop.example/p?a=1&b=2#x", "https://exämple.com/ü?q=\"'<>"])
def test_per_message_links_are_exactly_the_shared_contracts_tokens(who, url):
    from mailstream.schemas.links import TrackedLink

    for kind in LinkKind:
        fast = tracker.links(who).url(kind, target=url)
        link = TrackedLink(kind, who.message_id, who.account_id, who.recipient, who.email_id, who.smtp_token_id, url)
        assert fast == SIGNER.url(BASE, link)
        assert SIGNER.verify(fast.rsplit("/", 1)[1]) == link


def test_only_the_href_attribute_itself_is_rewritten():
    html = """<a data-href="https://a.example" title='x' href='https://b.example/?q="1"'>x</a><A\nHREF="https://c.example">"""
    out = tracker.track_html(html, WHO)
    assert 'data-href="https://a.example"' in out
    assert [verify(u).url for u in re.findall(r"""href=['"]([^'"]+)['"]""", out[out.index("title") :], re.I)] == [
        'https://b.example/?q="1"',
        "https://c.example",
    ]


def test_repeated_targets_get_the_same_signed_link_and_each_anchor_keeps_its_own_opt_out():
    html = (
        '<a href="https://shop.example/help">1</a><a href="mailto:a@shop.example">m</a>'
        '<a href="https://shop.example/help" data-mailstream-notrack>2</a>'
        "<a href='https://shop.example/help'>3</a><a href=\"mailto:a@shop.example\">m</a>"
        '<a href="https://shop.example/other">4</a>'
    )
    out = tracker.track_html(html, WHO)
    links = re.findall(r"""href=["']([^"']*)["']""", out)
    assert links[1] == links[4] == "mailto:a@shop.example"
    assert links[2] == "https://shop.example/help"  # opted out, though the same target is tracked elsewhere
    assert links[0] == links[3] and verify(links[0]).url == "https://shop.example/help"
    assert verify(links[5]).url == "https://shop.example/other"
    assert links[0] == tracker.link(LinkKind.CLICK, WHO, "https://shop.example/help")


def test_a_static_link_of_the_email_version_is_signed_as_its_index():
    who = Recipient("3f0c6a4e-0000-4000-8000-000000000001", 42, "jane@example.com", email_id=7, email_version=3)
    html = '<a href="https://shop.example/help">h</a><a href="https://shop.example/other">o</a>'
    out = tracker.track_html(html, who, {"https://shop.example/help": 4})
    first, second = (verify(u) for u in re.findall(r'href="([^"]*)"', out))
    assert (first.link, first.url, first.email_version) == (4, None, 3)
    assert (second.link, second.url) == (None, "https://shop.example/other")
    assert len(re.findall(r'href="([^"]*)"', out)[0]) < len(re.findall(r'href="([^"]*)"', out)[1])


MARKED_CASES = [
    "<html><body><a href=\"https://shop.example/p?a=1&amp;b=2\">P</a><a HREF='http://x.example'>X</a></body></html>",
    '<p><a href="https://shop.example/o/{{ custom.id }}">o</a> <a href="mailto:a@b.example">m</a>'
    ' <a href="#top">t</a></p>',
    '<a data-mailstream-notrack href="https://shop.example">x</a><a href="https://shop.example">y</a>',
    '<a href="{{ unsubscribe_link }}">u</a><A\nHREF="https://c.example">c</A></BODY>',
    "{% for i in custom['items'] %}<a href=\"https://s.example/{{ i }}\">{{ i }}</a>{% endfor %}<p>no body tag",
    '{% if custom.id == \'<a href="https://x.example">\' %}yes{% endif %}<a href="https://y.example">y</a>',
]


@pytest.mark.parametrize("html", MARKED_CASES)
def test_a_marked_template_tracks_exactly_as_the_rendered_html_would_be_tracked(html):
    from mailstream.renderer.render import compile_email, render

    who = Recipient("3f0c6a4e-0000-4000-8000-000000000001", 42, "jane@example.com", email_id=7, email_version=1)
    custom = {"id": "A&1", "items": ["1", "2"]}
    marked = render(
        compile_email("s", html, None, tracking=True), {}, custom, unsubscribe_link=f"{BASE}/u/x", marked=True
    )
    plain = render(compile_email("s", html, None), {}, custom, unsubscribe_link=f"{BASE}/u/x")
    assert marked.marked and not plain.marked
    static = {"https://shop.example": 0}
    assert tracker.track_marked(marked.html, who, static) == tracker.track_html(plain.html, who, static)
    assert marked.text == plain.text


def test_a_value_cannot_carry_a_tracking_mark():
    from mailstream.renderer.render import compile_email, render
    from mailstream.renderer.tracking import LINK_END, LINK_START

    forged = f"{LINK_START}https://evil.example{LINK_END}"
    out = render(compile_email("s", "<p>{{ custom.x }}</p>", None, tracking=True), {}, {"x": forged}, marked=True)
    who = Recipient("3f0c6a4e-0000-4000-8000-000000000001", 42, "jane@example.com")
    tracked = tracker.track_marked(out.html, who)
    assert "<p>https://evil.example</p>" in tracked and tracked.count(f"{BASE}/") == 1  # the pixel only

import pytest

from mailstream.renderer.render import RenderFailed, compile_email, html_to_text, render
from mailstream.schemas import SendResult


def rendered(subject="Hi", html="", text=None, contact=None, custom=None):
    return render(compile_email(subject, html, text), contact or {}, custom or {})


def test_merges_contact_and_custom_properties():
    out = rendered(
        subject="Order {{ custom.order_id }}",
        html="<p>Hi {{ contact.firstname }}</p>",
        contact={"firstname": "Jane"},
        custom={"order_id": "1001"},
    )
    assert out.subject == "Order 1001"
    assert out.html == "<p>Hi Jane</p>"


def test_a_missing_custom_property_stops_the_send():
    with pytest.raises(RenderFailed) as info:
        rendered(html="{{ custom.order_id }}")
    assert info.value.result is SendResult.MISSING_TEMPLATE_PROPERTIES
    assert "order_id" in info.value.reason


def test_a_missing_contact_property_renders_empty_and_default_applies():
    assert rendered(html="Hi {{ contact.firstname }}!").html == "Hi !"
    assert rendered(html="Hi {{ contact.firstname|default('friend') }}!").html == "Hi friend!"


def test_html_is_escaped_in_html_only():
    out = rendered(
        subject="{{ custom.x }}", html="<b>{{ custom.x }}</b>", text="{{ custom.x }}", custom={"x": "<script>&"}
    )
    assert out.html == "<b>&lt;script&gt;&amp;</b>"
    assert out.text == "<script>&"
    assert out.subject == "<script>&"


def test_loops_over_line_items():
    html = "{% for item in custom['items'] %}<li>{{ item.sku }} x{{ item.qty }}</li>{% endfor %}"
    out = rendered(html=html, custom={"items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1}]})
    assert out.html == "<li>A1 x2</li><li>B2 x1</li>"


def test_a_sandbox_escape_attempt_fails_safely():
    with pytest.raises(RenderFailed) as info:
        rendered(html="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    assert info.value.result is SendResult.TEMPLATE_RENDER_EXCEPTION


def test_a_template_that_does_not_compile_is_a_render_exception():
    with pytest.raises(RenderFailed) as info:
        compile_email("ok", "{% for %}", None)
    assert info.value.result is SendResult.TEMPLATE_RENDER_EXCEPTION


def test_line_breaks_in_properties_never_reach_the_subject():
    out = rendered(subject="Hi {{ contact.name }}", contact={"name": "x\r\nBcc: evil@example.com"})
    assert "\r" not in out.subject and "\n" not in out.subject


def test_text_is_derived_from_html_when_absent():
    assert rendered(html="<h1>Receipt</h1><p>Total &amp; tax</p><style>p{}</style>").text == "Receipt\nTotal & tax\n"
    assert html_to_text("<p>a<br>b</p>") == "a\nb\n"


def test_dropping_blank_lines_agrees_with_the_regular_expression_it_replaces():
    import random
    import re

    from mailstream.renderer.render import drop_blank_lines

    blank_lines = re.compile(r"[ \t]*\n(?:[ \t]*\n)+")
    rng = random.Random(7)
    alphabet = ["a", "b", " ", "\t", "\n", "\n", "\n", "x y"]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert drop_blank_lines(text).strip() == blank_lines.sub("\n", text).strip(), repr(text)

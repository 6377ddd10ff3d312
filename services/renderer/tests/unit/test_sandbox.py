"""Templates are customer input: escapes fail safely, work and output are bounded."""

import time

import pytest

from mailstream.renderer.render import RenderFailed, compile_email, render
from mailstream.schemas import SendResult


def fails_with(html: str, custom=None) -> SendResult:
    with pytest.raises(RenderFailed) as info:
        render(compile_email("s", html, None), {}, custom or {})
    return info.value.result


@pytest.mark.parametrize(
    "html",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ custom.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ self.__init__.__globals__ }}",
        "{{ ''.format.__globals__ }}",
        "{{ '{0.__class__}'.format('') }}",
    ],
)
def test_sandbox_escape_attempts_fail_safely(html):
    assert fails_with(html) in (SendResult.TEMPLATE_RENDER_EXCEPTION, SendResult.MISSING_TEMPLATE_PROPERTIES)


def test_the_canonical_escape_is_a_render_exception():
    assert fails_with("{{ ''.__class__.__mro__[1].__subclasses__() }}") is SendResult.TEMPLATE_RENDER_EXCEPTION


def test_property_dicts_expose_no_attributes():
    out = render(compile_email("s", "[{{ contact.__class__ }}][{{ contact.items }}]", None), {}, {})
    assert out.html == "[][]"


def test_no_files_can_be_included():
    assert fails_with("{% include '/etc/passwd' %}") is SendResult.TEMPLATE_RENDER_EXCEPTION


def test_property_lists_cannot_be_mutated():
    assert fails_with("{{ custom.items.append(1) }}", {"items": [1]}) is SendResult.TEMPLATE_RENDER_EXCEPTION


@pytest.mark.parametrize(
    "html",
    [
        "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}"
        "{% endfor %}",
        "{% for a in range(100000) %}{% endfor %}",
        "{% for a in custom.l %}{% for b in custom.l %}{% for c in custom.l %}{% endfor %}{% endfor %}{% endfor %}",
    ],
)
def test_loops_are_bounded_even_without_output(html):
    started = time.monotonic()
    assert fails_with(html, {"l": list(range(500))}) is SendResult.HUBL_LIMIT_EXCEEDED
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "html",
    [
        "{{ 'x' * 100000000 }}",
        "{{ 2 ** 100000000 }}",
        "{{ 'x'|center(100000000) }}",
        "{{ 'x'|indent(100000000, true) }}",
        "{{ '%100000000d'|format(1) }}",
        "{{ '%100000000d' % 1 }}",
        "{{ '{:>100000000}'.format(1) }}",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "{% for i in range(9000) %}{{ 'x' * 1000 }}{% endfor %}",
        "{% macro f(n) %}x{% if n < 60 %}{{ f(n+1) }}{{ f(n+1) }}{% endif %}{% endmacro %}{{ f(1) }}",
        "{{ lipsum(n=100000) }}",
        "{{ ('x' * 1000000)|replace('x', 'x' * 1000000) }}",
        "{{ ('x' * 1000000).replace('x', 'x' * 1000000) }}",
        "{{ ('x\n' * 1000000)|indent(1000) }}",
        "{{ ('x' * 1000000)|wordwrap(1) }}",
        "{{ range(100000)|join('x' * 1000000) }}",
        "{{ ('x' * 100).ljust(100000000) }}",
        "{{ ('\t' * 1000000).expandtabs(1000) }}",
        "{{ ('x' * 1000000).join(['a'] * 1000) }}",
    ],
)
def test_work_and_output_are_bounded(html):
    started = time.monotonic()
    assert fails_with(html) is SendResult.HUBL_LIMIT_EXCEEDED
    assert time.monotonic() - started < 1.5


def test_ordinary_filters_and_methods_still_work():
    html = "{{ custom.s|replace('a', 'b') }}|{{ custom.l|join(', ') }}|{{ 'x'|center(5) }}|{{ custom.s.upper() }}"
    out = render(compile_email("s", html, None), {}, {"s": "banana", "l": [1, 2]})
    assert out.html == "bbnbnb|1, 2|  x  |BANANA"


def test_ordinary_loops_and_filters_still_work():
    html = "{% for i in custom['items'] %}{{ loop.index }}:{{ i.sku|upper }} {{ '%.2f'|format(i.price) }};{% endfor %}"
    out = render(compile_email("s", html, None), {}, {"items": [{"sku": "a", "price": 1.5}, {"sku": "b", "price": 2}]})
    assert out.html == "1:A 1.50;2:B 2.00;"

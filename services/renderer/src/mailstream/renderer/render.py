"""Pure rendering: template + properties -> subject, from name, HTML and text, or the sendResult that stops it.

Templates are customer input and run in `sandbox.MailSandbox`; autoescaping in HTML only.
`{{ custom.x }}` missing from the request stops the send (MISSING_TEMPLATE_PROPERTIES);
`{{ contact.x }}` missing renders empty, and `|default(...)` applies to it.
`{{ unsubscribe_link }}` is the recipient's signed unsubscribe URL (empty for TRANSACTIONAL mail).
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import json
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import Template, TemplateError, UndefinedError
from jinja2.sandbox import SecurityError

from mailstream.core.retry import MailstreamError
from mailstream.core.sandbox import (
    LenientProperties,
    LimitExceeded,
    Properties,
    make_env,
    render_bounded,
    start_budget,
)
from mailstream.renderer.mime import keeps_whitespace
from mailstream.renderer.tracking import mark_links, strip_marks
from mailstream.schemas import SendResult


class RenderFailed(MailstreamError):
    """The send request's own input stops it: retrying cannot help (retriable is False)."""

    def __init__(self, result: SendResult, reason: str):
        super().__init__(reason)
        self.result, self.reason = result, reason


_html_env = make_env(autoescape=True)
_text_env = make_env(autoescape=False)
# Templates whose links were marked for tracking (tracking.mark_links): no value may carry a mark.
_marked_html_env = make_env(autoescape=True, finalize=strip_marks)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    from_name: str
    html: str
    text: str
    marked: bool = False  # the HTML's links are marked for tracking.track_marked


@dataclass(frozen=True, slots=True)
class CompiledEmail:
    """An email version's templates, compiled once and cached by (email id, version)."""

    subject: Template
    from_name: Template | None
    html: Template
    text: Template | None
    derived_text: Template | None = None  # from the HTML source, when the email has no text part
    marked_html: Template | None = None  # the HTML with its links marked for tracking (tracking.mark_links)
    wraps_in_text: bool = True  # no element of the HTML keeps white space as written (mime.wrap_html)


def _compile(env, source: str) -> Template:
    return env.compile_template(source)


def compile_email(
    subject: str, html: str, text: str | None, from_name: str = "", *, tracking: bool = False
) -> CompiledEmail:
    """With `tracking`, the HTML is also compiled with its links marked (tracking.mark_links), so
    that each message's links are signed without searching its rendered HTML for them."""
    try:
        marked = mark_links(html) if tracking else None
        compiled = CompiledEmail(
            subject=_compile(_text_env, subject),
            from_name=_compile(_text_env, from_name) if "{" in from_name else None,
            html=_compile(_html_env, html),
            text=_compile(_text_env, text) if text else None,
            marked_html=_compile(_marked_html_env, marked) if marked is not None else None,
            wraps_in_text=not keeps_whitespace(html.encode("utf-8", "replace")),
        )
    except TemplateError as exc:
        raise RenderFailed(SendResult.TEMPLATE_RENDER_EXCEPTION, f"template does not compile: {exc}") from exc
    if text:
        return compiled
    derived = None
    if (source := text_template_source(html)) is not None:
        try:
            derived = _compile(_text_env, source)
        except TemplateError:
            derived = None  # the text is derived from each rendered HTML instead
    return dataclasses.replace(compiled, derived_text=derived)


def _render(template: Template, context: dict[str, Any]) -> str:
    try:
        return render_bounded(template, context)
    except UndefinedError as exc:
        raise RenderFailed(SendResult.MISSING_TEMPLATE_PROPERTIES, str(exc)) from exc
    except LimitExceeded as exc:
        raise RenderFailed(SendResult.HUBL_LIMIT_EXCEEDED, f"template limit exceeded: {exc}") from exc
    except SecurityError as exc:
        raise RenderFailed(SendResult.TEMPLATE_RENDER_EXCEPTION, f"unsafe template: {exc}") from exc
    except TemplateError as exc:
        raise RenderFailed(SendResult.TEMPLATE_RENDER_EXCEPTION, str(exc)) from exc
    except (RecursionError, MemoryError) as exc:
        raise RenderFailed(SendResult.HUBL_LIMIT_EXCEEDED, f"template limit exceeded: {type(exc).__name__}") from exc
    except Exception as exc:  # any error a template provokes (1/0, bad types) stops only this send
        raise RenderFailed(SendResult.TEMPLATE_RENDER_EXCEPTION, f"{type(exc).__name__}: {exc}") from exc


def parse_custom(text: str) -> Any:
    """customProperties JSON with every object a property dict (C-level, via object_hook)."""
    return json.loads(text, object_hook=Properties)


def properties(value: Any, cls: type[Properties] = Properties) -> Any:
    """JSON values with every object turned into a property dict (keys win over dict methods)."""
    if isinstance(value, dict):
        return cls((k, properties(v, cls)) for k, v in value.items())
    if isinstance(value, list):
        return [properties(v, cls) for v in value]
    return value


def one_line(value: str) -> str:
    """Header text: every run of whitespace, CR and LF included, becomes one space."""
    return " ".join(value.split())


def render(
    email: CompiledEmail,
    contact: dict[str, str],
    custom: dict[str, Any],
    *,
    from_name: str = "",
    unsubscribe_link: str = "",
    marked: bool = False,
) -> Rendered:
    """`marked`: render the HTML with its links marked (when the email has a marked template);
    Rendered.marked says whether it did."""
    start_budget()
    context = {
        "contact": LenientProperties(contact),
        "custom": custom if isinstance(custom, Properties) else properties(custom),
        "unsubscribe_link": unsubscribe_link,
    }
    marked = marked and email.marked_html is not None
    html_out = _render(email.marked_html if marked else email.html, context)
    if email.text:
        text_out = _render(email.text, context)
    elif email.derived_text:
        text_out = drop_blank_lines(_render(email.derived_text, context)).strip() + "\n"
    else:
        text_out = html_to_text(strip_marks(html_out) if marked else html_out)
    subject_out = one_line(_render(email.subject, context))
    name_out = one_line(_render(email.from_name, context) if email.from_name else from_name)
    return Rendered(subject=subject_out, from_name=name_out, html=html_out, text=text_out, marked=marked)


_BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|tr|table|ul|ol)>|<br\s*/?>", re.I)
_DROP = re.compile(r"<(script|style|head|title)\b.*?</\1\s*>", re.I | re.S)
_ANCHOR = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*(["'])(.*?)\1[^>]*>(.*?)</a\s*>""", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


def _anchor_text(match: re.Match[str]) -> str:
    url = html_lib.unescape(match.group(2)).strip()
    label = match.group(3)
    plain = html_lib.unescape(_TAG.sub("", label)).strip()
    if not url.lower().startswith(("http://", "https://")) or plain == url:
        return label
    return f"{label} ({match.group(2)})"


def drop_blank_lines(text: str) -> str:
    """The text without the blank lines template statements and empty values leave, and without the
    trailing spaces of a line before them: `re.sub(r"[ \\t]*\\n(?:[ \\t]*\\n)+", "\\n", text)`, which cost
    ~40% of a render on a receipt (a test checks they agree)."""
    kept: list[str] = []
    after_blank = False
    for line in text.split("\n"):
        if not line.strip(" \t"):
            after_blank = True
            continue
        if after_blank and kept:
            kept[-1] = kept[-1].rstrip(" \t")
        after_blank = False
        kept.append(line)
    out = "\n".join(kept)
    return out + "\n" if after_blank else out


def tidy_text(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line).strip() + "\n"


def html_to_text(html: str) -> str:
    """A readable plain-text part for emails that have none: block breaks kept, links as `label (url)`."""
    text = _DROP.sub("", html)
    text = _ANCHOR.sub(_anchor_text, text)
    text = _BLOCK_END.sub("\n", text)
    return tidy_text(html_lib.unescape(_TAG.sub("", text)))


# Jinja syntax in a template source: held aside while the HTML around it becomes text.
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_HELD = re.compile("\ue000(\\d+)\ue001")


def text_template_source(html_source: str) -> str | None:
    """The plain-text template derived once from the HTML template (cached with it), so each send
    renders a small text template instead of converting its rendered HTML. Values then appear in
    the text as given, not HTML-escaped. None when the conversion would drop a `{% %}` statement
    (e.g. inside a tag or a <style>): then the text is derived from each rendered HTML instead."""
    if "\ue000" in html_source or "\ue001" in html_source:
        return None
    held: list[str] = []

    def hold(match: re.Match[str]) -> str:
        held.append(match.group(0))
        return f"\ue000{len(held) - 1}\ue001"

    text = html_to_text(_JINJA.sub(hold, html_source))
    kept = {int(i) for i in _HELD.findall(text)}
    if any(source.startswith("{%") and i not in kept for i, source in enumerate(held)):
        return None
    return _HELD.sub(lambda m: held[int(m.group(1))], text)

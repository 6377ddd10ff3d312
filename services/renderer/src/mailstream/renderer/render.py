"""Pure rendering: template + properties -> subject, from name, HTML and text, or the sendResult that stops it.

Templates are customer input and run in `sandbox.MailSandbox`; autoescaping in HTML only.
`{{ custom.x }}` missing from the request stops the send (MISSING_TEMPLATE_PROPERTIES);
`{{ contact.x }}` missing renders empty, and `|default(...)` applies to it.
`{{ unsubscribe_link }}` is the recipient's signed unsubscribe URL (empty for TRANSACTIONAL mail).
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import Template, TemplateError, UndefinedError
from jinja2.sandbox import SecurityError

from mailstream.renderer.sandbox import (
    LenientProperties,
    LimitExceeded,
    Properties,
    make_env,
    render_bounded,
    start_budget,
)
from mailstream.schemas import SendResult


class RenderFailed(Exception):
    def __init__(self, result: SendResult, reason: str):
        super().__init__(reason)
        self.result, self.reason = result, reason


_html_env = make_env(autoescape=True)
_text_env = make_env(autoescape=False)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    from_name: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class CompiledEmail:
    """An email version's templates, compiled once and cached by (email id, version)."""

    subject: Template
    from_name: Template | None
    html: Template
    text: Template | None


def _compile(env, source: str) -> Template:
    return env.compile_template(source)


def compile_email(subject: str, html: str, text: str | None, from_name: str = "") -> CompiledEmail:
    try:
        return CompiledEmail(
            subject=_compile(_text_env, subject),
            from_name=_compile(_text_env, from_name) if "{" in from_name else None,
            html=_compile(_html_env, html),
            text=_compile(_text_env, text) if text else None,
        )
    except TemplateError as exc:
        raise RenderFailed(SendResult.TEMPLATE_RENDER_EXCEPTION, f"template does not compile: {exc}") from exc


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
) -> Rendered:
    start_budget()
    context = {
        "contact": LenientProperties(contact),
        "custom": properties(custom),
        "unsubscribe_link": unsubscribe_link,
    }
    html_out = _render(email.html, context)
    text_out = _render(email.text, context) if email.text else html_to_text(html_out)
    subject_out = one_line(_render(email.subject, context))
    name_out = one_line(_render(email.from_name, context) if email.from_name else from_name)
    return Rendered(subject=subject_out, from_name=name_out, html=html_out, text=text_out)


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


def html_to_text(html: str) -> str:
    """A readable plain-text part for emails that have none: block breaks kept, links as `label (url)`."""
    text = _DROP.sub("", html)
    text = _ANCHOR.sub(_anchor_text, text)
    text = _BLOCK_END.sub("\n", text)
    text = html_lib.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line).strip() + "\n"

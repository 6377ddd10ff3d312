"""Pure rendering: template + properties -> subject, HTML and text, or the sendResult that stops it.

Templates are customer input: Jinja2's immutable sandbox, autoescaping in HTML only.
`{{ custom.x }}` missing from the request stops the send (MISSING_TEMPLATE_PROPERTIES);
`{{ contact.x }}` missing renders empty, and `|default(...)` applies to it.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, Undefined, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from mailstream.schemas import SendResult


class RenderFailed(Exception):
    def __init__(self, result: SendResult, reason: str):
        super().__init__(reason)
        self.result, self.reason = result, reason


class ContactProperties(dict):
    """A missing contact property is lenient-undefined: empty, and `default` replaces it."""

    def __missing__(self, key: str) -> Undefined:
        return Undefined(name=key)


_html_env = ImmutableSandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
_text_env = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class CompiledEmail:
    """An email version's templates, compiled once and cached by (email id, version)."""

    subject: Template
    html: Template
    text: Template | None


def compile_email(subject: str, html: str, text: str | None) -> CompiledEmail:
    try:
        return CompiledEmail(
            subject=_text_env.from_string(subject),
            html=_html_env.from_string(html),
            text=_text_env.from_string(text) if text else None,
        )
    except TemplateError as exc:
        raise RenderFailed(SendResult.TEMPLATE_RENDER_EXCEPTION, f"template does not compile: {exc}") from exc


def _render(template: Template, context: dict[str, Any]) -> str:
    try:
        return template.render(context)
    except UndefinedError as exc:
        raise RenderFailed(SendResult.MISSING_TEMPLATE_PROPERTIES, str(exc)) from exc
    except SecurityError as exc:
        raise RenderFailed(SendResult.TEMPLATE_RENDER_EXCEPTION, f"unsafe template: {exc}") from exc
    except TemplateError as exc:
        raise RenderFailed(SendResult.TEMPLATE_RENDER_EXCEPTION, str(exc)) from exc


def render(email: CompiledEmail, contact: dict[str, str], custom: dict[str, Any]) -> Rendered:
    context = {"contact": ContactProperties(contact), "custom": custom}
    html_out = _render(email.html, context)
    text_out = _render(email.text, context) if email.text else html_to_text(html_out)
    subject_out = " ".join(_render(email.subject, context).split())  # never a line break in a header
    return Rendered(subject=subject_out, html=html_out, text=text_out)


_BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|tr|table)>|<br\s*/?>", re.I)
_DROP = re.compile(r"<(script|style|head)\b.*?</\1>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


def html_to_text(html: str) -> str:
    """A readable plain-text part for emails that have none."""
    text = _DROP.sub("", html)
    text = _BLOCK_END.sub("\n", text)
    text = html_lib.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line).strip() + "\n"

"""The editor's preview: an email's subject and HTML rendered against a sample contact and custom
properties in the renderer's own sandbox (mailstream.core.sandbox: the same rules and work limits):

- Jinja2's immutable sandbox, autoescaping the HTML, loops, output and time bounded per render;
- `{{ custom.x }}` missing is an error (a send would end MISSING_TEMPLATE_PROPERTIES): shown inline;
- `{{ contact.x }}` missing renders empty, and `|default(...)` applies to it;
- `{{ unsubscribe_link }}` is a placeholder link.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, UndefinedError

from mailstream.core.sandbox import (
    LenientProperties,
    LimitExceeded,
    MailSandbox,
    Properties,
    render_bounded,
    start_budget,
)

MAX_PREVIEW_CHARS = 500_000
UNSUBSCRIBE_PLACEHOLDER = "https://unsubscribe.example/preview"


class PreviewSandbox(MailSandbox):
    """The renderer's sandbox; a missing custom property's error says what a send would do."""

    def _missing(self, obj: Properties, name: Any) -> Undefined:
        if obj.lenient:
            return super()._missing(obj, name)
        hint = f"missing custom property {name!r}: a send without it ends MISSING_TEMPLATE_PROPERTIES"
        return self.undefined(hint=hint, obj=obj, name=name)


@dataclass(frozen=True)
class Preview:
    subject: str = ""
    html: str = ""
    errors: tuple[str, ...] = ()


def properties(value: Any, cls: type[Properties] = Properties) -> Any:
    if isinstance(value, dict):
        return cls((str(k), properties(v, cls)) for k, v in value.items())
    if isinstance(value, list):
        return [properties(v, cls) for v in value]
    return value


def parse_sample(text: str, what: str) -> tuple[dict[str, Any], str | None]:
    """A JSON object typed into the editor, or ({}, the problem)."""
    if not text.strip():
        return {}, None
    try:
        value = json.loads(text)
    except ValueError as exc:
        return {}, f"{what} is not valid JSON: {exc}"
    if not isinstance(value, dict):
        return {}, f"{what} must be a JSON object"
    return value, None


def _render(env: PreviewSandbox, source: str, context: dict[str, Any], part: str) -> tuple[str, str | None]:
    try:
        start_budget()
        out = render_bounded(env.compile_template(source), context)
    except UndefinedError as exc:
        return "", f"{part}: {exc}"
    except LimitExceeded as exc:
        return "", f"{part}: template limit exceeded: {exc} (a send would end HUBL_LIMIT_EXCEEDED)"
    except TemplateError as exc:
        return "", f"{part}: {type(exc).__name__}: {exc}"
    except Exception as exc:  # a template's own error (1/0, bad types) is the preview's answer
        return "", f"{part}: {type(exc).__name__}: {exc}"
    if len(out) > MAX_PREVIEW_CHARS:
        return out[:MAX_PREVIEW_CHARS], f"{part}: longer than {MAX_PREVIEW_CHARS} characters (cut in the preview)"
    return out, None


def render_preview(subject: str, html: str, contact: dict[str, Any], custom: dict[str, Any]) -> Preview:
    context = {
        "contact": LenientProperties((str(k), "" if v is None else str(v)) for k, v in contact.items()),
        "custom": properties(custom),
        "unsubscribe_link": UNSUBSCRIBE_PLACEHOLDER,
    }
    text_env = PreviewSandbox(autoescape=False, undefined=StrictUndefined)
    html_env = PreviewSandbox(autoescape=True, undefined=StrictUndefined)
    subject_out, subject_problem = _render(text_env, subject, context, "subject")
    html_out, html_problem = _render(html_env, html, context, "HTML")
    errors = [p for p in (subject_problem, html_problem) if p]
    return Preview(subject=" ".join(subject_out.split()), html=html_out, errors=tuple(errors))

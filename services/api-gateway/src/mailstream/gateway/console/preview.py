"""The editor's preview: an email's subject and HTML rendered against a sample contact and custom
properties, by the renderer's rules (the gateway does not import the renderer service):

- Jinja2's immutable sandbox, autoescaping the HTML;
- `{{ custom.x }}` missing is an error (a send would end MISSING_TEMPLATE_PROPERTIES): shown inline;
- `{{ contact.x }}` missing renders empty, and `|default(...)` applies to it;
- `{{ unsubscribe_link }}` is a placeholder link.

The renderer's work limits (loop budget, output size) are not repeated here: the preview renders
one sample with a short output cap, and a send is still rendered (and limited) by the renderer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, TemplateError, Undefined, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_PREVIEW_CHARS = 500_000
UNSUBSCRIBE_PLACEHOLDER = "https://unsubscribe.example/preview"


class Properties(dict):
    """custom.*: a missing key is strictly undefined."""

    lenient = False


class LenientProperties(Properties):
    """contact.*: a missing key renders empty."""

    lenient = True


class PreviewSandbox(ImmutableSandboxedEnvironment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Properties):
            return obj[attribute] if attribute in obj else self._missing(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Properties) and argument not in obj:
            return self._missing(obj, argument)
        return super().getitem(obj, argument)

    def _missing(self, obj: Properties, name: Any) -> Undefined:
        if obj.lenient:
            return ChainableUndefined(obj=obj, name=name)
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
        out = env.from_string(source).render(context)
    except UndefinedError as exc:
        return "", f"{part}: {exc}"
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

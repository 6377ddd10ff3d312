"""A dynamic template: a mailstream email's subject, HTML and text rendered with a
personalization's dynamic_template_data, in libs/core's sandbox (the renderer's rules and work
limits). SendGrid's `{{var}}` and `{{a.b}}` read the data at the top level (`{{ custom.var }}`
works too); a missing value renders empty, as in Handlebars; HTML values are escaped."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError

from mailstream.core.sandbox import LenientProperties, LimitExceeded, MailSandbox, render_bounded, start_budget
from mailstream.gateway.rules import html_to_text


class TemplateFailed(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Compiled:
    subject: Template
    html: Template
    text: Template | None


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    html: str
    text: str


@lru_cache(maxsize=2)
def _env(autoescape: bool) -> MailSandbox:
    return MailSandbox(autoescape=autoescape, undefined=ChainableUndefined)


@lru_cache(maxsize=256)  # (email id, version) -> templates; a version never changes
def compile_version(email_id: int, version: int, subject: str, html: str, text: str | None) -> Compiled:
    try:
        return Compiled(
            subject=_env(False).compile_template(subject),
            html=_env(True).compile_template(html),
            text=_env(False).compile_template(text) if text else None,
        )
    except TemplateError as exc:
        raise TemplateFailed(f"email {email_id} v{version} does not compile: {exc}") from exc


def _lenient(value: Any) -> Any:
    if isinstance(value, dict):
        return LenientProperties((str(k), _lenient(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_lenient(v) for v in value]
    return value


def render(compiled: Compiled, data: dict[str, Any]) -> Rendered:
    values = _lenient(data)
    context = {"contact": LenientProperties(), "unsubscribe_link": "", **values, "custom": values}
    try:
        start_budget()
        subject = " ".join(render_bounded(compiled.subject, context).split())
        html = render_bounded(compiled.html, context)
        text = render_bounded(compiled.text, context) if compiled.text else html_to_text(html)
    except LimitExceeded as exc:
        raise TemplateFailed(f"template limit exceeded: {exc}") from exc
    except Exception as exc:  # the template's own error (bad types, 1/0)
        raise TemplateFailed(f"{type(exc).__name__}: {exc}") from exc
    return Rendered(subject, html, text)

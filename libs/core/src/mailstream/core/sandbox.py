"""The Jinja2 sandbox customer templates run in: no Python internals, no files, bounded work.
Shared by the renderer (every message) and the gateway's console (the editor's preview), so that
a preview is rendered by the same rules and limits as the message.

- `ImmutableSandboxedEnvironment`: no `__class__`/`__mro__`, no mutation of lists or dicts, no
  loader (so no `{% include %}` of files).
- Every `{% for %}` iterates through a guard (the template's syntax tree is rewritten at compile
  time) that counts iterations against a per-render budget and checks the deadline, so nested
  loops cannot run away even when their bodies output nothing.
- Output size is checked chunk by chunk; operators and filters that can build a huge value in
  one step (`*`, `**`, `%`, `center`, `indent`, `format`, `str.format`) are bounded.
- Property dicts prefer keys over dict methods: `{{ custom.items }}` is the line items.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, Template, Undefined, nodes
from jinja2.filters import do_center, do_format, do_indent, do_join, do_replace, do_wordwrap
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import generate_lorem_ipsum, pass_environment, pass_eval_context

MAX_ITERATIONS = 10_000  # loop iterations per render, all loops together
MAX_OUTPUT_CHARS = 2_000_000  # per rendered part
MAX_RENDER_SECONDS = 1.0  # per message, checked cooperatively
MAX_WRAP_CHARS = 20_000  # input of |wordwrap
_LOOP_GUARD = "_mailstream_loop_guard"
_BIG_WIDTH = re.compile(r"\d{5,}")


class LimitExceeded(SecurityError):
    """A template did more work or produced more output than a message may."""


@dataclass(slots=True)
class Budget:
    deadline: float
    iterations_left: int = MAX_ITERATIONS

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"rendering took longer than {MAX_RENDER_SECONDS}s")


_budget: ContextVar[Budget | None] = ContextVar("mailstream_render_budget", default=None)


def start_budget() -> Budget:
    budget = Budget(deadline=time.monotonic() + MAX_RENDER_SECONDS)
    _budget.set(budget)
    return budget


def _loop_guard(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget.get()
    if budget is None:  # rendering outside render(): still bounded
        budget = start_budget()
    for item in iterable:
        budget.iterations_left -= 1
        if budget.iterations_left < 0:
            raise LimitExceeded(f"more than {MAX_ITERATIONS} loop iterations")
        if not budget.iterations_left & 0xFF:
            budget.check_time()
        yield item


class Properties(dict):
    """Request properties (`custom`): a missing key is strictly undefined (stops the send)."""

    lenient = False


class LenientProperties(Properties):
    """Contact properties: a missing key renders empty and `|default(...)` replaces it."""

    lenient = True


def _bounded_mul(a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > MAX_OUTPUT_CHARS:
            raise LimitExceeded("repetition result too large")
    return operator.mul(a, b)


def _bounded_pow(a: Any, b: Any) -> Any:
    if isinstance(b, int) and abs(b) > 64:
        raise LimitExceeded("exponent too large")
    return operator.pow(a, b)


@lru_cache(maxsize=1024)  # templates use a handful of short format strings, over and over
def _big_width_cached(fmt: str) -> bool:
    return _BIG_WIDTH.search(fmt) is not None


def _big_width(fmt: str) -> bool:
    return _big_width_cached(fmt) if len(fmt) <= 64 else _BIG_WIDTH.search(fmt) is not None


def _bounded_mod(a: Any, b: Any) -> Any:
    if isinstance(a, str) and _big_width(a):
        raise LimitExceeded("format width too large")
    return operator.mod(a, b)


def _limit(estimated_size: int, what: str) -> None:
    if estimated_size > MAX_OUTPUT_CHARS:
        raise LimitExceeded(f"{what} result too large")


def _width(width: Any) -> int:
    return len(width) if isinstance(width, str) else int(width) if isinstance(width, int) else 0


def _replace_size(s: Any, old: Any, new: Any) -> int:
    s, old, new = str(s), str(old), str(new)
    count = len(s) + 1 if not old else s.count(old)
    return len(s) + count * max(0, len(new) - len(old))


@pass_eval_context
def _bounded_replace(eval_ctx, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    _limit(_replace_size(s, old, new), "replace")
    return do_replace(eval_ctx, s, old, new, count)


@pass_eval_context
def _bounded_join(eval_ctx, value: Any, d: str = "", attribute: Any = None) -> str:
    items = list(value)
    _limit(len(items) * len(str(d)), "join")
    return do_join(eval_ctx, items, d, attribute)


def _bounded_indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> str:
    _limit(len(str(s)) + (str(s).count("\n") + 1) * _width(width), "indent")
    return do_indent(s, width, first, blank)


def _bounded_center(value: Any, width: Any = 80) -> str:
    _limit(_width(width), "center")
    return do_center(value, width)


@pass_environment
def _bounded_wordwrap(environment, s: Any, width: int = 79, *args: Any, **kwargs: Any) -> str:
    if len(str(s)) > MAX_WRAP_CHARS:  # textwrap is slow: bounded input, not just output
        raise LimitExceeded("wordwrap input too large")
    return do_wordwrap(environment, s, width, *args, **kwargs)


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if n > 20 or max > 200:
        raise LimitExceeded("lipsum too large")
    return generate_lorem_ipsum(n, html, min, max)


def _bounded_format(value: str, *args: Any, **kwargs: Any) -> str:
    if _big_width(str(value)):
        raise LimitExceeded("format width too large")
    return do_format(value, *args, **kwargs)


def _check_str_method(text: str, name: str, args: tuple[Any, ...]) -> None:
    """Bounds str methods a template can call that build big strings from small inputs."""
    if name in ("format", "format_map") and _big_width(text):
        raise LimitExceeded("format width too large")
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _limit(_width(args[0]), name)
    elif name == "replace" and len(args) >= 2:
        _limit(_replace_size(text, args[0], args[1]), name)
    elif name == "expandtabs":
        _limit(len(text) + text.count("\t") * _width(args[0] if args else 8), name)
    elif name == "join" and args:
        _limit(len(text) * len(args[0]) if hasattr(args[0], "__len__") else 0, name)


class MailSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})
    _binops = {"*": _bounded_mul, "**": _bounded_pow, "%": _bounded_mod}

    def __init__(self, *, autoescape: bool, undefined: type, finalize=None) -> None:
        super().__init__(autoescape=autoescape, undefined=undefined, finalize=finalize)
        self.filters.update(
            center=_bounded_center,
            indent=_bounded_indent,
            format=_bounded_format,
            replace=_bounded_replace,
            join=_bounded_join,
            wordwrap=_bounded_wordwrap,
        )
        self.globals["lipsum"] = _bounded_lipsum
        self.globals[_LOOP_GUARD] = _loop_guard

    def call_binop(self, context, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name in self._binops:
            return self._binops[operator_name](left, right)
        return super().call_binop(context, operator_name, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Properties):
            try:
                return obj[attribute]
            except KeyError:
                return self._missing(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Properties) and argument not in obj:
            return self._missing(obj, argument)
        return super().getitem(obj, argument)

    def _missing(self, obj: Properties, name: Any) -> Undefined:
        if obj.lenient:
            return ChainableUndefined(obj=obj, name=name)
        return self.undefined(obj=obj, name=name)

    def call(__self, __context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget.get()
        if budget is not None:
            budget.check_time()
        if isinstance(getattr(__obj, "__self__", None), str):
            _check_str_method(__obj.__self__, getattr(__obj, "__name__", ""), args)
        return super().call(__context, __obj, *args, **kwargs)

    def compile_template(self, source: str) -> Template:
        """Compiles with every loop's iterable wrapped in the budget guard."""
        tree = self.parse(source)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name(_LOOP_GUARD, "load"), [loop.iter], [], None, None)
        for node in tree.find_all(nodes.Node):
            node.set_environment(self)
        return self.template_class.from_code(self, self.compile(tree), self.make_globals(None), None)


def make_env(*, autoescape: bool, finalize=None) -> MailSandbox:
    """`finalize` sees every `{{ }}` value before it is escaped and written."""
    return MailSandbox(autoescape=autoescape, undefined=StrictUndefined, finalize=finalize)


def render_bounded(template: Template, context: dict[str, Any]) -> str:
    """Renders chunk by chunk, stopping as soon as the output or the time is over the limit."""
    budget = _budget.get()
    chunks = template.root_render_func(template.new_context(context))
    out: list[str] = []
    size = 0
    while block := list(islice(chunks, 64)):  # checked per block of chunks: C-level joins in between
        size += sum(map(len, block))
        if size > MAX_OUTPUT_CHARS:
            raise LimitExceeded(f"output larger than {MAX_OUTPUT_CHARS} characters")
        out.append("".join(block))
        if budget is not None:
            budget.check_time()
    return "".join(out)

"""The verification snippet of docs/webhooks.md, as the docs show it: the python code block that
starts with `# mailstream webhook verification`, executed here. Tests verify with this, so the
documented code is the tested code."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs/webhooks.md"
MARK = "# mailstream webhook verification"


def snippet_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    found = [b for b in blocks if b.startswith(MARK)]
    assert len(found) == 1, f"docs/webhooks.md needs exactly one python block starting with {MARK!r}"
    return found[0]


def load_verify() -> Callable[..., bool]:
    namespace: dict = {}
    exec(compile(snippet_source(), str(DOC), "exec"), namespace)
    return namespace["verify_mailstream_signature"]

"""Bounce classes as they travel in DeliveryAttempted.bounce_class: "hard:<Class>" or "soft:<Class>".

The sender writes them from its policy (deploy/policy/bounces.toml); the tracker suppresses the
address only for a hard one.
"""

from __future__ import annotations

HARD = "hard"
SOFT = "soft"


def bounce_label(name: str, *, soft: bool) -> str:
    return f"{SOFT if soft else HARD}:{name}"


def is_soft_label(label: str) -> bool | None:
    """True / False for a "soft:" / "hard:" label; None when the label has neither prefix."""
    kind, sep, _ = label.strip().lower().partition(":")
    if not sep or kind not in (HARD, SOFT):
        return None
    return kind == SOFT

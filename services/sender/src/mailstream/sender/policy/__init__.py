"""The sending policy as data: `load_policy(folder)` -> `Policy`; `python -m mailstream.sender.policy check DIR`."""

from mailstream.sender.policy.load import load_policy
from mailstream.sender.policy.model import (
    Action,
    Automation,
    BounceClass,
    DestinationRule,
    Policy,
    Pool,
    Shaping,
    Source,
    Tls,
    WarmupSchedule,
)
from mailstream.sender.policy.throttle import PolicyError, ThrottleSpec, parse_duration

__all__ = [
    "Action",
    "Automation",
    "BounceClass",
    "DestinationRule",
    "Policy",
    "PolicyError",
    "Pool",
    "Shaping",
    "Source",
    "ThrottleSpec",
    "Tls",
    "WarmupSchedule",
    "load_policy",
    "parse_duration",
]

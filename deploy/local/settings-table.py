"""Prints the README's settings table from the services' declared settings:
.mailstream/venv/bin/python deploy/local/settings-table.py"""

from mailstream.core.settings import CommonSettings
from mailstream.gateway.settings import GatewaySettings
from mailstream.gateway.triggers.settings import TriggerSettings
from mailstream.renderer.settings import RendererSettings
from mailstream.sender.settings import SenderSettings
from mailstream.tracker.settings import TrackerSettings

SERVICES = [
    ("gateway", GatewaySettings),
    ("triggers", TriggerSettings),  # the gateway's settings and its own
    ("renderer", RendererSettings),
    ("sender", SenderSettings),
    ("tracker", TrackerSettings),
]


def main() -> None:
    rows: dict[str, tuple[str, str]] = {}
    used: dict[str, list[str]] = {}
    for variable, default, description in CommonSettings.describe():
        rows[variable], used[variable] = (default, description), ["all"]
    for service, settings in SERVICES:
        for variable, default, description in settings.describe():
            if "all" in used.get(variable, []) or (service == "triggers" and variable in used):
                continue
            rows.setdefault(variable, (default, description))
            used.setdefault(variable, []).append(service)
    print("| variable | used by | default | meaning |\n|---|---|---|---|")
    for variable, (default, description) in rows.items():
        print(f"| `{variable}` | {', '.join(used[variable])} | `{default}` | {description.replace('|', '/')} |")


if __name__ == "__main__":
    main()

"""The README's promises that can be checked mechanically."""

import re
from pathlib import Path

import pytest

from mailstream.gateway.settings import GatewaySettings
from mailstream.gateway.triggers.settings import TriggerSettings
from mailstream.renderer.settings import RendererSettings
from mailstream.sender.settings import SenderSettings
from mailstream.tracker.settings import TrackerSettings

pytestmark = pytest.mark.unit

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_quick_start_has_exactly_the_two_setup_commands():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    first_block = re.search(r"```bash\n(.*?)```", quick_start, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make run", "make test"]


def test_every_setting_is_in_the_settings_table_with_its_default():
    for settings in (GatewaySettings, TriggerSettings, RendererSettings, SenderSettings, TrackerSettings):
        for variable, default, _ in settings.describe():
            assert re.search(rf"\| `{variable}` \| [^|]+ \| `{re.escape(default)}` \|", README), variable

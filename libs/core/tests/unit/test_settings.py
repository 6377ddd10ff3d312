from dataclasses import dataclass

import pytest

from mailstream.core.settings import CommonSettings, SettingsError, setting


@dataclass(frozen=True)
class ExampleSettings(CommonSettings):
    port: int = setting(8080, "a port")
    ratio: float = setting(0.5, "a ratio")
    enabled: bool = setting(False, "a switch")
    hosts: tuple[str, ...] = setting(("a", "b"), "some hosts")
    api_secret: str = setting("", "a secret", secret=True)


@dataclass(frozen=True)
class RequiredSettings(CommonSettings):
    signing_key: str = setting(None, "needed")


def test_defaults_work_locally():
    s = ExampleSettings.from_env({})
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.port == 8080 and s.hosts == ("a", "b")


def test_values_are_read_from_prefixed_variables_and_typed():
    s = ExampleSettings.from_env(
        {
            "MAILSTREAM_PORT": "9000",
            "MAILSTREAM_RATIO": "1.5",
            "MAILSTREAM_ENABLED": "yes",
            "MAILSTREAM_HOSTS": "x, y,z",
            "PORT": "1",
        }
    )
    assert (s.port, s.ratio, s.enabled, s.hosts) == (9000, 1.5, True, ("x", "y", "z"))


def test_a_malformed_value_names_the_variable():
    with pytest.raises(SettingsError, match="MAILSTREAM_PORT='eighty'"):
        ExampleSettings.from_env({"MAILSTREAM_PORT": "eighty"})
    with pytest.raises(SettingsError, match="MAILSTREAM_ENABLED"):
        ExampleSettings.from_env({"MAILSTREAM_ENABLED": "maybe"})


def test_secrets_are_redacted_for_logs():
    s = ExampleSettings.from_env({"MAILSTREAM_API_SECRET": "hunter2"})
    assert "hunter2" not in repr(s.redacted())
    assert s.redacted()["database_url"] == "***"


def test_describe_lists_every_variable_with_default_and_description():
    rows = {name: (default, text) for name, default, text in ExampleSettings.describe()}
    assert rows["MAILSTREAM_PORT"] == ("8080", "a port")
    assert rows["MAILSTREAM_HOSTS"][0] == "a,b"
    assert "MAILSTREAM_DATABASE_URL" in rows

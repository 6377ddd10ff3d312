"""The one pools.toml loader, strict for the renderer and the sender alike."""

import pytest

from mailstream.schemas.pools import PoolsError, load_pools_file

pytestmark = pytest.mark.unit

GOOD = """
[sources.a]
address = "10.0.0.1"
max_message_rate = "50/s"

[sources.b]
address = "10.0.0.2"

[pools.shared.a]
weight = 1

[pools.pair.a]
weight = 3

[pools.pair.b]
weight = 1
"""


def write(tmp_path, text: str):
    (tmp_path / "pools.toml").write_text(text)
    return tmp_path


def test_sources_pools_weights_and_sender_options_are_read(tmp_path):
    loaded = load_pools_file(write(tmp_path, GOOD))
    assert loaded.sources["a"].address == "10.0.0.1" and loaded.sources["a"].options == {"max_message_rate": "50/s"}
    assert loaded.pools["pair"].members == (("a", 3), ("b", 1))
    assert loaded.pools["shared"].members == (("a", 1),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace('address = "10.0.0.2"', 'address = "10.0.0.1"'), "used by two sources"),
        (GOOD.replace("[pools.shared.a]", "[pools.other.a]"), "'shared' pool is required"),
        (GOOD + "\n[pools.x.nope]\nweight = 1\n", "missing source 'nope'"),
        (GOOD.replace("weight = 3", "weight = 0"), "positive integer"),
        (GOOD.replace('address = "10.0.0.2"', 'address = "10.0.0.2"\nspeed = 9'), "unknown key"),
        (GOOD + "\n[extra]\n", "unknown key"),
        ("[sources.a]\n", "address is required"),
        ("not toml ][", "not valid TOML"),
    ],
)
def test_a_malformed_file_names_what_is_wrong(tmp_path, text, message):
    with pytest.raises(PoolsError, match=message):
        load_pools_file(write(tmp_path, text))


def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(PoolsError, match="missing"):
        load_pools_file(tmp_path)

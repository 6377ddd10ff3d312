import random

import pytest

from mailstream.renderer.pools import PolicyError, load_pools


def write(tmp_path, text):
    (tmp_path / "pools.toml").write_text(text)
    return tmp_path


def test_loads_weighted_pools(tmp_path):
    pools = load_pools(
        write(
            tmp_path,
            """
[sources.a]
address = "127.0.0.2"
[sources.b]
address = "127.0.0.3"
[pools.shared.a]
weight = 3
[pools.shared.b]
weight = 1
""",
        )
    )
    rng = random.Random(7)
    picks = [pools["shared"].choose(rng) for _ in range(4000)]
    assert 0.7 < picks.count("127.0.0.2") / len(picks) < 0.8


def test_a_pool_naming_a_missing_source_is_an_error(tmp_path):
    with pytest.raises(PolicyError, match="missing source"):
        load_pools(write(tmp_path, '[sources.a]\naddress = "127.0.0.2"\n[pools.shared.zz]\nweight = 1\n'))


def test_the_shipped_policy_loads():
    assert load_pools("deploy/policy")["shared"].addresses

"""The bounce table: one loader and classifier for the sender's synchronous 5xx replies and the
tracker's late bounces (DSNs); the shipped table classifies what the big providers answer."""

from pathlib import Path

import pytest

from mailstream.schemas.bounces import BounceTable, BounceTableError, is_soft_label

pytestmark = pytest.mark.unit

SHIPPED = Path(__file__).resolve().parents[2] / "deploy/policy/bounces.toml"


def table(tmp_path, text: str) -> BounceTable:
    path = tmp_path / "bounces.toml"
    path.write_text(text)
    return BounceTable.load(path)


@pytest.mark.parametrize(
    ("code", "text", "label", "result"),
    [
        (550, "5.1.1 <x@y>: Recipient address rejected: User unknown", "hard:InvalidRecipient", "UNDELIVERABLE"),
        (550, "5.1.10 RESOLVER.ADR.RecipientNotFound; not found", "hard:InvalidRecipient", "UNDELIVERABLE"),
        (None, "5.1.10 smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound", "hard:InvalidRecipient", "UNDELIVERABLE"),
        (550, "5.1.2 bad destination domain", "hard:BadDomain", "BLOCKED_DOMAIN"),
        (554, "5.7.1 Message rejected as spam", "hard:SpamBlock", "BLOCKED_ADDRESS"),
        (550, "5.7.26 DMARC policy violation", "hard:PolicyRelated", "UNDELIVERABLE"),
        (552, "5.2.2 Mailbox full, over quota", "soft:QuotaIssues", "UNDELIVERABLE"),
        (554, "something odd", "hard:Uncategorized", "UNDELIVERABLE"),
    ],
)
def test_the_shipped_table(code, text, label, result):
    bounce = BounceTable.load(SHIPPED).classify(code, text)
    assert (bounce.label, bounce.send_result) == (label, result)


def test_the_shipped_named_classes_and_a_folder_holding_the_file():
    shipped = BounceTable.load(SHIPPED.parent)
    assert shipped == BounceTable.load(SHIPPED)
    assert shipped.expired.label == "soft:MessageExpired" and shipped.fallback.label == "hard:Uncategorized"
    assert (shipped.bad_domain.label, shipped.bad_domain.send_result) == ("hard:BadDomain", "BLOCKED_DOMAIN")
    assert is_soft_label(shipped.expired.label) is True and is_soft_label("hard:X") is False


def test_the_first_class_in_file_order_wins_case_insensitively(tmp_path):
    bounces = table(
        tmp_path,
        '[classes.First]\npatterns = ["quota"]\n[classes.Second]\nsoft = true\npatterns = ["over quota"]\n',
    )
    assert bounces.classify(552, "Over QUOTA").name == "First"
    assert bounces.classify(550, "nothing").label == "hard:Uncategorized"  # the built-in fallback


def test_a_missing_file_means_the_built_in_classes(tmp_path):
    bounces = BounceTable.load(tmp_path / "bounces.toml")
    assert bounces.classes == () and bounces.classify(550, "5.1.1").label == "hard:Uncategorized"
    assert bounces.expired.soft and bounces.bad_domain.send_result == "BLOCKED_DOMAIN"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("not = [toml", "not valid TOML"),
        ('fallback = "Ghost"', "unknown class 'Ghost'"),
        ('[classes.A]\npatterns = ["("]', "bad regex"),
        ('[classes.A]\npatterns = "x"', "list of regexes"),
        ("[classes.A]\nsoft = 1", "soft must be"),
        ("[classes.A]\nseverity = 1", "unknown key"),
        ("surprise = 1", "unknown key"),
    ],
)
def test_a_malformed_table_names_the_file_and_key(tmp_path, text, error):
    with pytest.raises(BounceTableError, match=error):
        table(tmp_path, text)


def test_the_compose_policy_folder_ships_the_same_table():
    assert (SHIPPED.parents[1] / "compose/policy/bounces.toml").read_text() == SHIPPED.read_text()

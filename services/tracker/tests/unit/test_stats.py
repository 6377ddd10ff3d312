from datetime import UTC, datetime

from mailstream.schemas import DeliveryOutcome, EngagementKind, EngagementRecorded
from mailstream.tracker import handlers
from mailstream.tracker.stats import FIELDS, StatsKey, fold, keys_for, outcome_delta, rate, summed

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


M1 = "6f1c2b7e-3d4a-4b5c-8d9e-000000000001"
M2 = "6f1c2b7e-3d4a-4b5c-8d9e-000000000002"


def event(kind, machine=False, message=M1, recipient="jane@example.com", email_id=7, token=None):
    return EngagementRecorded(
        event_id="e",
        kind=kind,
        message_id=message,
        account_id=1,
        recipient=recipient,
        occurred_at=T0,
        email_id=email_id,
        smtp_token_id=token,
        machine=machine,
    )


def fold_all(events):
    """The increments of one batch of engagement events whose first-human keys are all new."""
    plan = handlers.plan_batch(events)
    written = handlers.Written(new_firsts=set(plan.first_candidates))
    return summed(handlers.increments(plan, written))


def test_each_event_counts_for_the_account_the_email_and_the_token():
    expected = [StatsKey(1, "account", "1"), StatsKey(1, "email", "7"), StatsKey(1, "token", "tok")]
    assert keys_for(1, 7, "tok") == expected
    assert keys_for(1, None, None) == [StatsKey(1, "account", "1")]
    assert StatsKey.decode(StatsKey(1, "token", "a/b").encode()) == StatsKey(1, "token", "a/b")


def test_a_send_of_a_trigger_rule_counts_for_the_rule_too():
    rule = "0b8f4c1e-7a55-4d3e-9c41-5f2a6b7c8d90"
    expected = [StatsKey(1, "account", "1"), StatsKey(1, "email", "7"), StatsKey(1, "trigger", rule)]
    assert keys_for(1, 7, None, rule) == expected
    assert keys_for(1, 7, "tok", None) == keys_for(1, 7, "tok")
    assert StatsKey.decode(StatsKey(1, "trigger", rule).encode()) == StatsKey(1, "trigger", rule)


def test_unique_human_opens_are_per_message_and_recipient_and_machines_are_apart():
    totals = fold_all(
        [
            event(EngagementKind.OPEN),
            event(EngagementKind.OPEN),
            event(EngagementKind.OPEN, recipient="JANE@example.com"),
            event(EngagementKind.OPEN, machine=True),
            event(EngagementKind.OPEN, message=M2),
            event(EngagementKind.CLICK, machine=True),
            event(EngagementKind.CLICK),
            event(EngagementKind.SPAM_REPORT),
        ]
    )
    account = totals[StatsKey(1, "account", "1")]
    assert account == {
        "opens_total": 5,
        "opens_unique_human": 2,
        "opens_machine": 1,
        "clicks_total": 2,
        "clicks_machine": 1,
        "clicks_unique_human": 1,
        "spam_reports": 1,
    }
    assert totals[StatsKey(1, "email", "7")] == account


def test_a_machine_open_first_does_not_use_up_the_human_one():
    totals = fold_all([event(EngagementKind.OPEN, machine=True), event(EngagementKind.OPEN)])
    assert totals[StatsKey(1, "account", "1")]["opens_unique_human"] == 1


def test_final_outcomes_move_one_counter_and_deferrals_none():
    assert outcome_delta(DeliveryOutcome.DELIVERED) == {"delivered": 1}
    assert outcome_delta(DeliveryOutcome.BOUNCED) == {"bounced": 1}
    assert outcome_delta(DeliveryOutcome.DROPPED) == {"dropped": 1}
    assert outcome_delta(DeliveryOutcome.DEFERRED) == {}


def test_fold_refuses_unknown_counters_and_rates_need_deliveries():
    assert set(fold({}, {f: 1 for f in FIELDS})) == set(FIELDS)
    try:
        fold({}, {"likes": 1})
    except ValueError:
        pass
    else:
        raise AssertionError("unknown counter accepted")
    assert rate(3, 4) == 0.75 and rate(3, 0) is None

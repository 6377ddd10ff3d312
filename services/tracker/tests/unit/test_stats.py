from datetime import UTC, datetime

from mailstream.schemas import DeliveryOutcome, EngagementKind, EngagementRecorded
from mailstream.tracker.handlers import on_engagement
from mailstream.tracker.stats import FIELDS, StatsKey, fold, keys_for, outcome_delta, rate

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def event(kind, machine=False, message="m-1", recipient="jane@example.com", email_id=7, token=None):
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
    seen, totals = {}, {}
    for evt in events:
        for key, delta in on_engagement(evt, seen):
            totals[key] = fold(totals.get(key, {}), delta)
    return totals


def test_each_event_counts_for_the_account_the_email_and_the_token():
    expected = [StatsKey(1, "account", "1"), StatsKey(1, "email", "7"), StatsKey(1, "token", "tok")]
    assert keys_for(1, 7, "tok") == expected
    assert keys_for(1, None, None) == [StatsKey(1, "account", "1")]
    assert StatsKey.decode(StatsKey(1, "token", "a/b").encode()) == StatsKey(1, "token", "a/b")


def test_unique_human_opens_are_per_message_and_recipient_and_machines_are_apart():
    totals = fold_all(
        [
            event(EngagementKind.OPEN),
            event(EngagementKind.OPEN),
            event(EngagementKind.OPEN, recipient="JANE@example.com"),
            event(EngagementKind.OPEN, machine=True),
            event(EngagementKind.OPEN, message="m-2"),
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


def test_the_buffer_sums_per_row_until_drained():
    from mailstream.tracker.stats import IncrementBuffer

    buffer, seen = IncrementBuffer(), {}
    for e in [event(EngagementKind.OPEN), event(EngagementKind.OPEN, machine=True)]:
        buffer.add(on_engagement(e, seen))
    drained = dict(buffer.drain())
    assert drained[StatsKey(1, "account", "1")] == {"opens_total": 2, "opens_unique_human": 1, "opens_machine": 1}
    assert buffer.drain() == []


class FailingPool:
    def acquire(self):
        raise OSError("database down")


class Deps:
    def __init__(self, pool):
        self.pool = pool


async def test_flush_writes_only_owned_partitions_and_keeps_failed_rows_for_the_next_tick():
    from mailstream.tracker.handlers import flush_stats

    dirty = {"1/account/1": 0, "2/account/2": 3}
    counts = {"1/account/1": {"opens_total": 1}, "2/account/2": {"opens_total": 2}}
    assert await flush_stats(counts, dirty, {0}, Deps(FailingPool())) == 0
    assert dirty == {"1/account/1": 0}  # partition 3 is no longer ours: dropped; ours kept for a retry

"""Warm-up decisions (warmup.py): which period, what cap, how a request is granted."""

from datetime import UTC, date, datetime, timedelta

import pytest

from mailstream.sender.policy import Source, WarmupSchedule
from mailstream.sender.warmup import Position, Window, grant, window_of

HOURLY = WarmupSchedule("h", 3600.0, (5, 10, 20))
DAILY = WarmupSchedule("d", 86400.0, (50, 100))
NOW = datetime(2026, 12, 2, 14, 30, tzinfo=UTC)


def source(schedule=HOURLY, started=None) -> Source:
    return Source(name="new", address="127.0.0.9", warmup=schedule, warmup_started=started)


class TestWindow:
    def test_an_hourly_period_is_the_wall_clock_hour(self):
        w = window_of(source(started=NOW.date()), first_used_on=None, now=NOW)
        assert (w.start, w.end, w.cap) == (
            datetime(2026, 12, 2, 14, tzinfo=UTC),
            datetime(2026, 12, 2, 15, tzinfo=UTC),
            5,
        )
        assert w.seconds_left(NOW) == 1800.0

    def test_a_daily_period_is_the_utc_day(self):
        w = window_of(source(DAILY, started=NOW.date()), first_used_on=None, now=NOW)
        assert (w.start, w.end) == (datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 3, tzinfo=UTC))

    def test_the_cap_follows_the_age_in_days(self):
        w = window_of(source(started=date(2026, 12, 1)), first_used_on=None, now=NOW)
        assert w.cap == 10

    def test_past_the_schedule_the_ip_is_warm(self):
        assert window_of(source(started=date(2026, 11, 29)), first_used_on=None, now=NOW) is None

    def test_an_ip_without_a_schedule_has_no_window(self):
        assert window_of(Source(name="warm", address="127.0.0.2"), first_used_on=None, now=NOW) is None


class TestFirstUse:
    def test_without_a_policy_date_day_0_is_the_recorded_first_use(self):
        assert window_of(source(), first_used_on=date(2026, 12, 1), now=NOW).cap == 10

    def test_an_ip_that_never_sent_starts_today(self):
        assert window_of(source(), first_used_on=None, now=NOW).cap == 5

    def test_the_policy_date_wins_over_the_recorded_first_use(self):
        w = window_of(source(started=date(2026, 11, 30)), first_used_on=date(2026, 12, 2), now=NOW)
        assert w.cap == 20


class TestGrant:
    W = Window(datetime(2026, 12, 2, 14, tzinfo=UTC), datetime(2026, 12, 2, 15, tzinfo=UTC), 5)

    def test_grants_up_to_the_cap_and_no_further(self):
        position, granted = grant(None, self.W, 3)
        assert (position, granted) == (Position(self.W.start, 3), 3)
        position, granted = grant(position, self.W, 3)
        assert (position, granted) == (Position(self.W.start, 5), 2)
        assert grant(position, self.W, 1) == (position, 0)

    def test_a_new_period_counts_from_zero(self):
        full = Position(self.W.start, 5)
        later = Window(self.W.end, self.W.end + timedelta(hours=1), 5)
        assert grant(full, later, 2) == (Position(later.start, 2), 2)

    def test_a_later_period_already_stored_is_counted_against_not_reset(self):
        ahead = Position(self.W.end, 4)  # another process's clock already moved to the next hour
        assert grant(ahead, self.W, 3) == (Position(self.W.end, 5), 1)

    @pytest.mark.parametrize("wanted", [0, 1, 7])
    def test_never_more_than_wanted(self, wanted):
        assert grant(None, self.W, wanted)[1] == min(wanted, 5)

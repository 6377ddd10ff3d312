"""Records a worker never handed to its agents are noticed, so the consumer reads them again."""

from mailstream.core.skipped_records import SkippedRecords

TP = ("email.delivery", 3)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_hole_that_lasts_is_reported_once_then_watched_again():
    clock = Clock()
    skipped = SkippedRecords(after=10, clock=clock)
    assert not skipped.seen(TP, 100, 150, in_flight=[])
    clock.now = 9.9
    assert not skipped.seen(TP, 100, 150, in_flight=[])
    clock.now = 10.0
    assert skipped.seen(TP, 100, 150, in_flight=[])
    clock.now = 11.0
    assert not skipped.seen(TP, 100, 150, in_flight=[])  # the seek gets its own `after` to work


def test_an_event_still_in_flight_is_not_a_hole():
    clock = Clock()
    skipped = SkippedRecords(after=10, clock=clock)
    assert not skipped.seen(TP, 100, 150, in_flight=[100])
    clock.now = 60.0  # a write waiting out a database restart
    assert not skipped.seen(TP, 100, 150, in_flight=[120, 170])
    assert not skipped.seen(TP, 100, 150, in_flight=[])  # the hole starts being watched now
    clock.now = 70.0
    assert skipped.seen(TP, 100, 150, in_flight=[170])  # in flight past the hole does not count


def test_a_moving_commit_restarts_the_watch():
    clock = Clock()
    skipped = SkippedRecords(after=10, clock=clock)
    assert not skipped.seen(TP, 100, 150, in_flight=[])
    clock.now = 8.0
    assert not skipped.seen(TP, 120, 150, in_flight=[])  # the commit moved: progress, not a hole
    clock.now = 12.0
    assert not skipped.seen(TP, 120, 150, in_flight=[])
    clock.now = 18.0
    assert skipped.seen(TP, 120, 150, in_flight=[])

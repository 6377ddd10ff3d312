"""The offset a Faust worker commits never passes an event still in flight (mailstream's fix of
faust-streaming 0.15.3's _new_offset, in mailstream.core.faust_runtime)."""

from collections import defaultdict
from types import SimpleNamespace

from intervaltree import IntervalTree

from mailstream.core.faust_runtime import _BatchFetchingConsumer

TP = ("email.delivery", 3)


def consumer(committed: int | None, acked: list[int], *, rebalancing: bool = False) -> _BatchFetchingConsumer:
    c = object.__new__(_BatchFetchingConsumer)  # only the commit bookkeeping is exercised
    c.app = SimpleNamespace(rebalancing=rebalancing)
    c._unacked_messages = set()
    c._read_offset = defaultdict(lambda: None)
    c._acked = defaultdict(list, {TP: list(acked)})
    c._acked_index = defaultdict(set, {TP: set(acked)})
    c._committed_offset = defaultdict(lambda: None, {TP: committed})
    c._gap = defaultdict(IntervalTree)
    return c


def test_an_event_in_flight_holds_the_commit_back():
    # 100 is the next to process and still in flight; 101 and 102 are done.
    assert consumer(100, [101, 102])._new_offset(TP) is None


def test_done_events_from_the_committed_offset_are_committed():
    assert consumer(100, [100, 101, 102])._new_offset(TP) == 103
    assert consumer(100, [100, 101, 103])._new_offset(TP) == 102


def test_offset_zero_counts_as_committed():
    assert consumer(0, [1])._new_offset(TP) is None
    assert consumer(0, [0, 1])._new_offset(TP) == 2


def test_nothing_is_committed_while_a_rebalance_has_forgotten_the_committed_offset():
    # Revoked partitions lose their committed offset; acks of events that were in flight must not
    # commit past events dropped from the agents' buffers.
    assert consumer(None, [150, 151], rebalancing=True)._new_offset(TP) is None
    assert consumer(None, [150, 151])._new_offset(TP) == 152  # a group's very first commit


async def test_offsets_missing_between_fetched_records_are_not_counted_as_handled():
    # Faust would commit past them (right for compacted topics, which mailstream does not consume).
    c = consumer(100, [101, 102])
    await c._add_gap(TP, 100, 100)
    assert not c._gap[TP]
    assert c._new_offset(TP) is None

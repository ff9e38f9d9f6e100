"""The committable offset is the first offset not yet done, even when done-ness is out of order."""

from __future__ import annotations

import pytest

from worker.checkpoint import OffsetOrderError, _PartitionOffsets


def test_out_of_order_done_commits_only_the_contiguous_prefix() -> None:
    p = _PartitionOffsets()
    for off in (10, 11, 12, 13):
        p.track(off)
    p.mark_done(12)  # a dead letter overtakes events still in the batcher
    assert p.next_commit is None
    p.mark_done(10)
    assert p.next_commit == 11
    p.mark_done(11)
    assert p.next_commit == 13
    p.mark_done(13)
    assert p.next_commit == 14 and not p.queue and not p.done


def test_offsets_going_backwards_is_a_bug() -> None:
    p = _PartitionOffsets()
    p.track(5)
    with pytest.raises(OffsetOrderError):
        p.track(5)
    p.mark_done(5)
    with pytest.raises(OffsetOrderError):
        p.track(3)
    p.track(9)  # gaps are fine (compaction, transaction markers)

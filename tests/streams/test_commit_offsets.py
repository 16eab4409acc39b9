"""The worker never commits past a message it still holds (faust-streaming issue #606)."""

from __future__ import annotations

import faust
from faust.types import TP

import ioc.streams.app  # noqa: F401  (patches Faust's consumer)


def test_a_held_message_at_the_committed_offset_stops_the_commit() -> None:
    app = faust.App("t-commit", broker="kafka://127.0.0.1:1", store="memory://",
                    web_enabled=False)
    consumer = app.consumer  # built, not connected
    tp = TP("ioc.feedback.report.v1", 0)
    held = {6}
    app.ioc_in_flight = lambda t, offset: t == tp and offset in held  # type: ignore[attr-defined]

    def ack(*offsets: int) -> None:
        consumer._acked[tp].extend(offsets)
        consumer._acked_index[tp].update(offsets)

    consumer._committed_offset[tp] = 6
    ack(7, 8, 9, 10)
    assert consumer._new_offset(tp) is None  # unpatched Faust: 11, and offset 6 is lost
    held.discard(6)
    ack(6)
    assert consumer._new_offset(tp) == 11
    # without the app's hook (another Faust app), Faust's own rule applies
    del app.ioc_in_flight  # type: ignore[attr-defined]
    consumer._committed_offset[tp] = 11
    ack(12)  # offset 11 not acknowledged, and nothing holds it here
    assert consumer._new_offset(tp) == 13  # Faust takes a one-offset gap for compaction

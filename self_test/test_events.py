"""The event bus: an event reaches every subscriber and callback, and a producer can ask whether
anyone would see one before it builds the message (`quiet`)."""

from __future__ import annotations

import logging

from bot.events import EventBus, EventKind


def test_quiet_only_when_nobody_listens_and_the_level_is_not_logged(caplog):
    bus = EventBus()
    with caplog.at_level(logging.CRITICAL, logger="bot.events"):
        assert bus.quiet() and bus.quiet("WARNING")
        assert not bus.quiet("CRITICAL")                   # that level is logged
        q = bus.subscribe()
        assert not bus.quiet()                             # a subscriber would see it
        bus.emit(EventKind.TRADE, "bought")
        assert q.get_nowait().message == "bought"
        bus.unsubscribe(q)
        assert bus.quiet()
        seen = []
        bus.add_callback(seen.append)
        assert not bus.quiet()
        bus.emit(EventKind.INFO, "hello")
        assert [e.message for e in seen] == ["hello"]
    with caplog.at_level(logging.INFO, logger="bot.events"):
        assert not EventBus().quiet()                       # its log line would be written

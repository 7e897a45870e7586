"""The order of a product's waiting items: by the instant of the order, whatever its written form."""

from __future__ import annotations

from orders.restock import queue_position


def test_offsets_are_compared_as_instants_not_as_text() -> None:
    # 10:00 at -03:00 is 13:00 UTC: later than 12:00Z, although "10:00" sorts first as text.
    brasilia = queue_position("2024-03-01T10:00:00-03:00", "A")
    utc = queue_position("2024-03-01T12:00:00Z", "B")

    assert utc < brasilia


def test_a_date_without_time_or_offset_counts_as_midnight_utc() -> None:
    assert queue_position("2024-03-01", "A") == queue_position("2024-03-01T00:00:00Z", "A")
    assert queue_position("2024-03-01T09:30", "A") == queue_position("2024-03-01T09:30:00+00:00", "A")


def test_the_edges_of_the_calendar_do_not_overflow() -> None:
    # The validator accepts these; converting them to UTC would leave the calendar.
    assert queue_position("0001-01-01T00:00:00+01:00", "A").startswith("0001-01-01T00:00:00.000000+00:00#")
    assert queue_position("9999-12-31T23:30:00-03:00", "A").startswith("9999-12-31T23:59:59.999999+00:00#")


def test_fractions_and_ids_keep_a_total_order() -> None:
    keys = [
        queue_position("2024-03-01T10:00:00Z", "B"),
        queue_position("2024-03-01T10:00:00.5Z", "A"),
        queue_position("2024-03-01T10:00:00Z", "A"),
        queue_position("0999-01-01", "Z"),
    ]

    assert sorted(keys) == [keys[3], keys[2], keys[0], keys[1]]

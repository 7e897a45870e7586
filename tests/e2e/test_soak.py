"""A small soak in the suite: mixed good, duplicate, invalid and poison input, and restocks meanwhile; the books
must balance."""

from __future__ import annotations

from soak import run


def test_a_small_soak_balances_the_books(outputs, aws):
    summary = run(n=60, clients=8, quiet=True, timeout=300)
    failed = [check for check, passed in summary["checks"].items() if not passed]
    assert failed == [], summary
    assert summary["lost"] == 0 and summary["oversold_units"] == 0
    assert summary["pending_orders"] > 0, "the products are scarce enough to leave some orders pending"
    assert summary["released_orders"] > 0, "the late restocks release some of the orders that waited"

"""A small soak in the suite: mixed good, duplicate, invalid and poison input, and restocks meanwhile; the books
must balance."""

from __future__ import annotations

from sandbox.records import SoakResult
from sandbox.soak import run


def test_a_small_soak_balances_the_books(outputs, aws):
    result = run(n=60, clients=8, quiet=True, timeout=300)
    assert result.failed() == [], result
    assert result.lost == 0 and result.oversold_units == 0
    assert result.pending_orders > 0, "the products are scarce enough to leave some orders pending"
    assert result.released_orders > 0, "the late restocks release some of the orders that waited"
    assert SoakResult.read() == result, "the books written to .sandbox/soak-last.json read back the same"

"""The percentile grammar is bounded, so the samples a confidence bound needs stay bounded."""

from __future__ import annotations

import pytest

from benchbox.errors import BadInput
from benchbox.measure import stats
from benchbox.parse import PERCENTILES, parse_target, percentile_problem


@pytest.mark.parametrize(
    "text, why",
    [
        ("p99.99=1ms", "p99.99 has more than 1 decimal"),
        ("p99.999999=1ms", "p99.999999 has more than 1 decimal"),
        ("p100=1ms", "p100 is out of range"),
        ("p101=1ms", "p101 is out of range"),
        ("p0=1ms", "p0 is out of range"),
        ("p=1ms", "'p' is not a percentile like p99"),
        ("=1ms", "the percentile is missing"),
    ],
)
def test_a_percentile_outside_the_grammar_says_why(text, why):
    with pytest.raises(BadInput) as info:
        parse_target(text)
    assert f"latency target {text!r} is not valid: {why}" in str(info.value)
    assert "p99=20ms" in info.value.hint


def test_a_percentile_inside_the_grammar_but_not_stored_is_refused_as_before():
    assert percentile_problem("p98") is None
    with pytest.raises(BadInput, match=r"^latency target 'p98=1ms' is not valid$"):
        parse_target("p98=1ms")


def test_every_accepted_percentile_needs_a_bounded_number_of_samples():
    for name, q in PERCENTILES.items():
        assert percentile_problem(name) is None
        assert parse_target(f"{name}=5ms").q == q
    # the grammar's extremes: one decimal, strictly inside (0, 100)
    assert percentile_problem("p99.9") is None and percentile_problem("p0.1") is None
    worst = max(stats.min_samples_for_ci(q, 0.999) for q in (0.1, 99.9))
    assert worst == stats.min_samples_for_ci(99.9, 0.999) < 10_000

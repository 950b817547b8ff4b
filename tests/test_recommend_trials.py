"""The recommendation with trials: unsettled cells judged by their bound, ties stated."""

from __future__ import annotations

from test_recommend import cid, make, make_cell

from benchbox import schema
from benchbox.parse import parse_target
from benchbox.recommend import TIE_RULE, recommend

P99_20 = parse_target("p99=20ms")


def trialled(cell: schema.Cell, tput_lo: float, tput_hi: float, trials: int = 3) -> schema.Cell:
    """The cell as the trial phase leaves it: a between-trial throughput CI."""
    r = schema.replace(
        cell.result, trials=trials, ci_level="between-trial", throughput_ci_ips=[tput_lo, tput_hi]
    )
    return schema.replace(cell, result=r)


def test_an_unsettled_cell_with_trials_is_judged_by_its_bound_and_keeps_its_warning():
    steady = trialled(make_cell(1, throughput=900.0, cost=None), 880.0, 920.0)
    unsettled = trialled(
        make_cell(2, status="unstable", throughput=1500.0, cost=None), 1400.0, 1600.0
    )
    unsettled = schema.replace(
        unsettled, warnings=(schema.CellWarning("unstable", "the windows never agreed"),)
    )
    rec = recommend(make(steady, unsettled, priced=False), P99_20, objective="throughput")
    assert rec.winner == cid(2) and cid(2) not in rec.rejected
    too_slow = trialled(make_cell(4, p99=19.0, hi=26.0, status="unstable"), 1.0, 2.0)
    rec = recommend(make(steady, too_slow, priced=False), P99_20, objective="throughput")
    assert rec.winner == cid(1)
    assert rec.rejected[cid(4)] == "p99 upper bound 26 ms > target 20 ms"


def test_an_unsettled_single_run_is_rejected_and_told_to_use_trials():
    one = make_cell(2, status="unstable", reason="p99 varied 30%", cost=0.1)
    one = schema.replace(one, result=schema.replace(one.result, ci_level="within-trial"))
    rec = recommend(make(make_cell(1), one), P99_20)
    assert rec.rejected[cid(2)].startswith("unstable measurement: p99 varied 30%")
    assert "--trials 3" in rec.rejected[cid(2)]


def test_candidates_the_objective_cannot_tell_apart_are_a_stated_tie_picked_by_the_rule():
    big_batch = trialled(make_cell(2, batch=4, throughput=1010.0, cost=None), 950.0, 1070.0)
    small = trialled(make_cell(1, batch=1, throughput=1000.0, cost=None), 940.0, 1060.0)
    far = trialled(make_cell(4, batch=1, throughput=800.0, cost=None), 780.0, 820.0)
    for order in ((big_batch, small, far), (far, small, big_batch)):
        rec = recommend(make(*order, priced=False), P99_20, objective="throughput")
        assert rec.winner == cid(1)  # the smaller batch, though its point is lower
        assert rec.tied == (cid(1), cid(2, batch=4))
        assert f"tied within noise: {cid(1)}, {cid(2, batch=4)}" in rec.note
        assert TIE_RULE in rec.note
        assert rec.runners_up[0] == cid(2, batch=4)


def test_cost_ties_come_from_the_throughput_interval_and_clear_winners_are_not_ties():
    a = trialled(make_cell(1, throughput=1000.0, cost=1.00), 990.0, 1010.0)
    b = trialled(make_cell(2, throughput=700.0, cost=1.43), 690.0, 710.0)
    rec = recommend(make(a, b), P99_20, objective="cost")
    assert rec.winner == cid(1) and rec.tied == ()
    assert rec.note is None or "tied" not in rec.note
    close = trialled(make_cell(2, throughput=980.0, cost=1.02), 900.0, 1060.0)
    rec = recommend(make(a, close), P99_20, objective="cost")
    assert rec.tied == (cid(1), cid(2))


def test_single_trial_cells_are_never_called_tied():
    rec = recommend(
        make(make_cell(1, throughput=1000.0), make_cell(2, throughput=1000.0)),
        P99_20,
        objective="throughput",
    )
    assert rec.tied == ()


def test_the_tie_depends_on_the_intervals_not_on_which_point_leads():
    """A chain: A overlaps B, B overlaps C, A does not overlap C. Anchoring on the leading point
    made the tie A+B or B+C depending on whether A's or B's point was higher; the intervals
    are the same, so the stated tie must be too."""
    ties = set()
    for a_point, b_point in ((1005.0, 1000.0), (995.0, 1000.0)):
        a = trialled(make_cell(1, batch=1, throughput=a_point, cost=None), 960.0, 1040.0)
        b = trialled(make_cell(2, batch=2, throughput=b_point, cost=None), 930.0, 1010.0)
        c = trialled(make_cell(4, batch=4, throughput=930.0, cost=None), 900.0, 955.0)
        for order in ((a, b, c), (c, b, a)):
            rec = recommend(make(*order, priced=False), P99_20, objective="throughput")
            ties.add(rec.tied)
            assert "could be the best" in rec.note
    assert ties == {(cid(1), cid(2, batch=2))}

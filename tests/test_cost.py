"""The cost formulas against hand-computed values, and pricing a report on a profile."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchbox import cost, schema
from benchbox.errors import BadInput


def _profile(
    name: str = "cloud",
    price: float = 1.0,
    idle_w: float = 50.0,
    tdp_w: float = 250.0,
    pue: float = 1.0,
    usd_per_kwh: float | None = None,
    energy_included: bool = True,
) -> cost.Profile:
    return cost.Profile(
        name=name,
        description="test machine",
        price_per_hour_usd=price,
        price_source="hand-made for a test",
        price_date="2026-11-28",
        power=cost.PowerSpec(idle_w, tdp_w, pue, usd_per_kwh, energy_included),
        hardware={"cpu": "test cpu", "vcpus": 4},
    )


ONPREM = _profile("onprem", price=0.5, pue=1.5, usd_per_kwh=0.12, energy_included=False)


# ---------------------------------------------------------------- formulas


def test_capacity_cost_matches_sagemakers_published_example():
    # SageMaker Inference Recommender: CostPerHour 0.204 at 648 invocations per minute gives
    # CostPerInference 5.2469e-06, i.e. 5.2469 USD per million.
    per_million = cost.capacity_usd_per_million(0.204, 648 / 60)
    assert per_million == pytest.approx(5.2469, abs=5e-5)
    assert per_million / 1e6 == pytest.approx(5.2469e-06, rel=1e-4)


def test_capacity_cost_by_hand():
    # 3.6 USD/h at 1000 inferences/s: 3.6 USD buys 3.6e6 inferences -> 1 USD per million.
    assert cost.capacity_usd_per_million(3.6, 1000.0) == pytest.approx(1.0)


def test_energy_cost_by_hand():
    # 300 W at 100 ips = 3 J per inference; PUE 1.5 -> 4.5 J = 1.25e-6 kWh; at 0.12 USD/kWh
    # that is 1.5e-7 USD per inference, 0.15 USD per million.
    assert cost.energy_usd_per_million(300.0, 1.5, 100.0, 0.12) == pytest.approx(0.15)


def test_energy_per_inference_is_power_over_throughput():
    assert cost.energy_j_per_inference(250.0, 50.0) == pytest.approx(5.0)


def test_formulas_refuse_a_zero_throughput():
    with pytest.raises(ValueError):
        cost.capacity_usd_per_million(1.0, 0.0)
    with pytest.raises(ValueError):
        cost.energy_j_per_inference(100.0, 0.0)


def test_power_estimate_is_linear_between_idle_and_tdp_and_clamped():
    assert cost.estimate_power_w(0.0, 100.0, 300.0) == pytest.approx(100.0)
    assert cost.estimate_power_w(50.0, 100.0, 300.0) == pytest.approx(200.0)
    assert cost.estimate_power_w(100.0, 100.0, 300.0) == pytest.approx(300.0)
    assert cost.estimate_power_w(180.0, 100.0, 300.0) == pytest.approx(300.0)
    assert cost.estimate_power_w(-5.0, 100.0, 300.0) == pytest.approx(100.0)


def test_cloud_cost_ignores_power_because_the_price_includes_it():
    cloud = _profile(price=3.6)
    assert cost.usd_per_million(cloud, 1000.0, power_w=500.0) == pytest.approx(1.0)


def test_onprem_cost_adds_energy_when_power_is_known():
    # capacity 0.5 / 3600 / 100 * 1e6 = 1.38889; energy as in the by-hand test: 0.15.
    total = cost.usd_per_million(ONPREM, 100.0, power_w=300.0)
    assert total == pytest.approx(0.5 / 3600 / 100 * 1e6 + 0.15)
    assert cost.usd_per_million(ONPREM, 100.0, power_w=None) == pytest.approx(1.388889, rel=1e-5)


def test_cost_is_none_without_a_positive_throughput():
    assert cost.usd_per_million(ONPREM, 0.0, power_w=100.0) is None
    assert cost.usd_per_million(ONPREM, float("nan"), power_w=100.0) is None


prices = st.floats(min_value=0.0, max_value=200.0, allow_nan=False)
throughputs = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)


@given(prices, prices, throughputs)
def test_cost_grows_with_price(p1, p2, ips):
    lo, hi = sorted((p1, p2))
    assert cost.usd_per_million(_profile(price=lo), ips, None) <= cost.usd_per_million(
        _profile(price=hi), ips, None
    )


@given(prices, throughputs, throughputs, st.floats(min_value=0.0, max_value=2000.0))
def test_cost_falls_as_throughput_rises(price, t1, t2, power_w):
    slow, fast = sorted((t1, t2))
    profile = _profile("onprem", price=price, usd_per_kwh=0.2, pue=1.2, energy_included=False)
    slow_cost = cost.usd_per_million(profile, slow, power_w)
    fast_cost = cost.usd_per_million(profile, fast, power_w)
    assert fast_cost <= slow_cost * (1 + 1e-12)
    # and exactly in inverse proportion to throughput
    assert slow_cost * slow == pytest.approx(fast_cost * fast, rel=1e-9)


def test_fleet_size_rounds_up_and_prices_the_fleet():
    fleet = cost.fleet_size(1000.0, 300.0, headroom=0.8, price_per_hour_usd=1.006)
    assert fleet.replicas == 5  # 1000 / (300 * 0.8) = 4.17 -> 5
    assert fleet.usd_per_hour == pytest.approx(5 * 1.006)
    assert (fleet.qps, fleet.headroom) == (1000.0, 0.8)


def test_fleet_size_exact_fit_is_not_bumped_by_float_noise():
    assert cost.fleet_size(800.0, 1000.0, headroom=0.8).replicas == 1
    assert cost.fleet_size(800.0, 1000.0, headroom=0.8).usd_per_hour is None


def test_fleet_size_rejects_bad_input():
    with pytest.raises(BadInput):
        cost.fleet_size(0.0, 100.0)
    with pytest.raises(BadInput):
        cost.fleet_size(100.0, 100.0, headroom=1.5)
    with pytest.raises(BadInput):
        cost.fleet_size(100.0, 0.0)


# ---------------------------------------------------------------- pricing a report


def _result(**kw) -> schema.Result:
    base = dict(
        requests=100,
        inferences=400,
        duration_s=2.0,
        throughput_ips=200.0,
        requests_per_s=50.0,
        latency_ms=schema.LatencyStats(5, 1, 3, 5, 6, 7, 8, 9, 10),
    )
    base.update(kw)
    return schema.Result(**base)


def _report() -> schema.Report:
    def cell(name, result):
        config = schema.ServingConfig(device="cuda:0" if name == "gpu" else "cpu")
        return schema.Cell(id=name, config=config, load=schema.Load(), status="ok", result=result)

    cells = (
        # estimated from another profile: must be redone from the new one
        cell("est", _result(cpu_util_pct=50.0, power_w=999.0, power_source="estimate")),
        # no power yet, utilisation known
        cell("nopower", _result(cpu_util_pct=25.0, throughput_ips=100.0)),
        # measured power is kept
        cell("gpu", _result(cpu_util_pct=10.0, power_w=120.0, power_source="nvml")),
        # nothing to estimate from
        cell("blind", _result(cpu_util_pct=None, power_w=None)),
        schema.Cell(
            id="failed", config=schema.ServingConfig(), load=schema.Load(), status="failed"
        ),
    )
    host = schema.HostInfo("h", "Linux", "cpu", 2, 1, 4.0, "3.11", "1.32")
    model = schema.ModelInfo("m.onnx", "ab" * 32, 17, ())
    return schema.Report(host=host, model=model, cells=cells)


def test_price_report_fills_power_energy_and_cost_per_cell():
    profile = _profile(price=3.6, idle_w=50.0, tdp_w=250.0)
    priced = cost.price_report(_report(), profile)
    by_id = {c.id: c for c in priced.cells}

    est = by_id["est"].result
    assert est.power_source == "estimate"
    assert est.power_w == pytest.approx(150.0)  # 50 + 0.5 * 200
    assert est.power_above_idle_w == pytest.approx(100.0)
    assert est.energy_j_per_inference == pytest.approx(150.0 / 200.0)
    assert est.cost_usd_per_million == pytest.approx(3.6 / 3600 / 200 * 1e6)  # 5.0

    nopower = by_id["nopower"].result
    assert nopower.power_w == pytest.approx(100.0)  # 50 + 0.25 * 200
    assert nopower.power_source == "estimate"
    assert nopower.cost_usd_per_million == pytest.approx(10.0)

    gpu = by_id["gpu"].result
    assert (gpu.power_w, gpu.power_source) == (120.0, "nvml")
    assert gpu.energy_j_per_inference == pytest.approx(0.6)

    blind = by_id["blind"].result
    assert blind.power_w is None and blind.energy_j_per_inference is None
    assert blind.cost_usd_per_million == pytest.approx(5.0)

    assert by_id["failed"].result is None
    assert priced.profile == profile


def test_price_report_on_two_profiles_gives_independent_answers():
    report = _report()
    cheap = cost.price_report(report, _profile("a", price=1.0, idle_w=10.0, tdp_w=110.0))
    dear = cost.price_report(report, _profile("b", price=2.0, idle_w=50.0, tdp_w=250.0))
    again = cost.price_report(report, _profile("a", price=1.0, idle_w=10.0, tdp_w=110.0))
    c, d = cheap.cells[0].result, dear.cells[0].result
    assert c.power_w == pytest.approx(60.0) and d.power_w == pytest.approx(150.0)
    assert d.cost_usd_per_million == pytest.approx(2 * c.cost_usd_per_million)
    assert again == cheap  # no hidden state
    assert report.cells[0].result.power_w == 999.0  # the input report is untouched
    assert report.profile is None


def test_price_report_adds_energy_for_a_profile_that_pays_for_power():
    priced = cost.price_report(_report(), ONPREM)
    gpu = next(c for c in priced.cells if c.id == "gpu").result
    expected = cost.capacity_usd_per_million(0.5, 200.0) + cost.energy_usd_per_million(
        120.0, 1.5, 200.0, 0.12
    )
    assert gpu.cost_usd_per_million == pytest.approx(expected)
    assert not math.isclose(expected, cost.capacity_usd_per_million(0.5, 200.0))


def test_priced_report_survives_a_json_round_trip():
    priced = cost.price_report(_report(), ONPREM)
    back = schema.report_from_json(schema.report_to_json(priced))
    assert back.profile == ONPREM
    assert back.cells[1].result.cost_usd_per_million == pytest.approx(
        priced.cells[1].result.cost_usd_per_million
    )

"""The cost formulas against hand-computed values, and pricing a report on a profile."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchbox import cost, pricing, schema
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


# ---------------------------------------------------------------- which profile prices a host


def _host(cpu: str, vcpus: int, *gpus: str) -> schema.HostInfo:
    """A synthetic host: the CPU's name as /proc/cpuinfo gives it, its vCPUs and NVML GPU names."""
    return schema.HostInfo(
        hostname="h",
        os="Linux",
        cpu_model=cpu,
        cpu_cores_logical=vcpus,
        cpu_cores_physical=None,
        memory_gb=8.0,
        python="3.11",
        onnxruntime="1.32",
        gpus=tuple(schema.GpuInfo(name=g) for g in gpus),
    )


@pytest.fixture
def builtins_only(monkeypatch):
    monkeypatch.delenv(cost.ENV_VAR, raising=False)


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [
        ("AMD EPYC", ("AMD", "EPYC", None)),
        ("AMD EPYC 9R14 96-Core Processor", ("AMD", "EPYC", "9R14")),
        ("Intel(R) Xeon(R) Platinum 8488C CPU @ 2.40GHz", ("Intel", "Xeon", "8488C")),
        ("2x Intel Xeon Platinum 8275CL (2nd gen Xeon Scalable)", ("Intel", "Xeon", "8275CL")),
        ("ARM Neoverse-V1", ("Arm", "Neoverse V1", None)),
        ("AWS Graviton4 (Arm Neoverse V2, 96 cores)", ("Arm", "Neoverse V2", None)),
        ("aarch64", (None, None, None)),
        ("host not included", (None, None, None)),
    ],
)
def test_cpu_traits_read_vendor_family_and_part_from_the_name(cpu, expected):
    assert pricing.cpu_traits(cpu) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (("AMD EPYC", 2), "aws-c7a-large"),  # this project's 2-core VM: c7a.large over m7a.large
        (("AMD EPYC 7763 64-Core Processor", 4), "aws-c7a-xlarge"),
        (("AMD EPYC 9R14 96-Core Processor", 8), "aws-c7a-2xlarge"),
        (("Intel(R) Xeon(R) Platinum 8488C CPU @ 2.40GHz", 8), "aws-c7i-2xlarge"),  # the part
        (("Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz", 8), "azure-d8s-v5"),
        (("Intel(R) Xeon(R) CPU @ 2.20GHz", 8), "aws-c7i-2xlarge"),  # no part: the cheapest Xeon
        (("ARM Neoverse-V1", 2), "aws-c7g-large"),  # Graviton3: c7g over m7g (cheaper)
        (("ARM Neoverse-V2", 2), "aws-c8g-large"),  # Graviton4
        (("AMD EPYC 7R32", 4, "NVIDIA A10G"), "aws-g5-xlarge"),
        (("AMD EPYC 7R13 Processor", 4, "NVIDIA L4"), "aws-g6-xlarge"),
        (("AMD EPYC 7R13 Processor", 16, "NVIDIA H100 80GB HBM3"), "aws-p5-4xlarge"),
        (("AMD EPYC 7V12 64-Core Processor", 4, "Tesla T4"), "azure-nc4as-t4-v3"),
    ],
)
def test_auto_picks_the_builtin_matching_vendor_family_vcpus_and_gpus(
    builtins_only, host, expected
):
    chosen = pricing.choose_profile("auto", _host(*host))
    assert chosen is not None and chosen.name == expected


@pytest.mark.parametrize(
    "host",
    [
        ("AMD EPYC", 3),  # no 3-vCPU machine
        ("AMD EPYC 7R32", 4, "NVIDIA A10G", "NVIDIA A10G"),  # two GPUs, g5.xlarge has one
        ("AMD EPYC 7R32", 4, "NVIDIA A100-SXM4-40GB"),  # another GPU model
        ("Intel(R) Core(TM) i7-10700K CPU @ 3.80GHz", 16),  # a desktop
        ("aarch64", 2),  # a CPU that says nothing of itself
    ],
)
def test_auto_prices_an_unmatched_host_at_the_default_electricity_rate(builtins_only, host):
    h = _host(*host)
    assert pricing.best_match(h, cost.list_profiles()) is None
    chosen = pricing.choose_profile("auto", h)
    assert chosen.name == cost.ELECTRICITY_ONLY
    assert chosen.price_per_hour_usd == 0.0
    assert chosen.power.usd_per_kwh == cost.DEFAULT_USD_PER_KWH == 0.146
    assert not chosen.power.energy_included
    assert chosen.power.tdp_w == pytest.approx(cost.DEFAULT_W_PER_VCPU * h.cpu_cores_logical)
    cost.check_profile(chosen, "electricity-only")
    # a million inferences at 100 ips and 10 W: 1e4 s * 10 W = 1e5 J = 1/36 kWh
    assert cost.usd_per_million(chosen, 100.0, 10.0) == pytest.approx(0.146 / 36)


def test_among_equal_matches_the_cpu_part_wins_then_the_price_then_the_name():
    def box(name, cpu, price):
        p = _profile(name, price=price)
        return schema.replace(p, hardware={"cpu": cpu, "vcpus": 4, "gpu_count": 0})

    generic = box("a-generic", "AMD EPYC", 0.10)
    exact = box("b-exact", "AMD EPYC 7763", 0.30)
    dear = box("c-dear", "AMD EPYC", 0.20)
    host = _host("AMD EPYC 7763 64-Core Processor", 4)
    assert pricing.best_match(host, [generic, exact, dear]).name == "b-exact"
    assert pricing.best_match(host, [dear, generic]).name == "a-generic"
    twin = box("a-twin", "AMD EPYC", 0.10)
    assert pricing.best_match(host, [generic, twin]).name == "a-generic"


def test_none_turns_pricing_off_and_a_name_loads_that_profile(builtins_only):
    host = _host("AMD EPYC", 2)
    assert pricing.choose_profile("none", host) is None
    assert pricing.choose_profile(None, host) is None
    assert pricing.choose_profile("aws-g5-xlarge", host).name == "aws-g5-xlarge"
    with pytest.raises(BadInput, match="profile name is empty"):
        pricing.choose_profile("", host)


def test_a_profile_for_other_hardware_is_a_mismatch_naming_both_sides(builtins_only):
    host = _host("AMD EPYC", 2)
    found = pricing.mismatch(cost.load_profile("aws-c7i-2xlarge"), host)
    assert found is not None and found.differs == ("CPU", "vCPUs")
    assert "Intel Xeon Platinum 8488C" in found.profile_side and "8 vCPU" in found.profile_side
    assert found.host_side == "AMD EPYC, 2 vCPU, no GPU"
    assert found.text().startswith("pricing on other hardware: profile aws-c7i-2xlarge is Intel")
    gpu = pricing.mismatch(cost.load_profile("aws-g5-xlarge"), _host("AMD EPYC 7R32", 4))
    assert gpu.differs == ("GPU",)  # the same CPU, but no GPU measured
    assert "1x NVIDIA A10G" in gpu.text() and "no GPU" in gpu.text()


def test_a_matching_profile_and_the_fallback_are_no_mismatch(builtins_only):
    assert pricing.mismatch(cost.load_profile("aws-c7a-large"), _host("AMD EPYC", 2)) is None
    assert pricing.mismatch(cost.electricity_only(2), _host("Intel Core", 64)) is None
    rtx = cost.load_profile("onprem-rtx4090")  # a GPU card only: its host is not priced
    assert pricing.mismatch(rtx, _host("AMD Ryzen 9 7950X", 32, "NVIDIA GeForce RTX 4090")) is None
    assert pricing.mismatch(rtx, _host("AMD Ryzen 9 7950X", 32)).differs == ("GPU",)


def _report_on(host: schema.HostInfo, profile: cost.Profile, asked: str) -> schema.Report:
    report = schema.replace(_report(), host=host, settings=schema.SweepSettings(profile=asked))
    return cost.price_report(report, profile)


def test_pricing_lines_say_which_profile_priced_the_sweep_and_why(builtins_only):
    host = _host("AMD EPYC", 2)
    auto = _report_on(host, pricing.choose_profile("auto", host), "auto")
    assert pricing.pricing_lines(auto) == ["priced as aws-c7a-large (matches AMD EPYC, 2 vCPU)"]
    other = _report_on(host, cost.load_profile("aws-c7i-2xlarge"), "aws-c7i-2xlarge")
    first, second = pricing.pricing_lines(other)
    assert first == "priced as aws-c7i-2xlarge"
    assert second == pricing.mismatch_text(other) and "AMD EPYC, 2 vCPU" in second
    desk = _host("Intel(R) Core(TM) i7-10700K CPU @ 3.80GHz", 16)
    lone = _report_on(desk, pricing.choose_profile("auto", desk), "auto")
    label, how = pricing.pricing_lines(lone)
    assert "no built-in profile matches this host (Intel Core, 16 vCPU)" in label
    assert "0.146 USD/kWh" in label and "EIA" in label
    assert how.startswith("for a machine's hourly price pass --profile NAME")
    assert all(c.result is None or c.result.cost_usd_per_million for c in lone.cells[:2])
    assert pricing.pricing_lines(schema.replace(_report(), settings=None)) == []

"""Machine profiles: the built-ins, user folders, the loader's errors and `benchbox profiles`."""

from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path

import pytest

from benchbox import cost, pricing, schema
from benchbox.devices import host_info
from benchbox.errors import BadInput
from benchbox.store import load_report

GOOD = """\
name = "{name}"
description = "a test box"
price_per_hour_usd = {price}
price_source = "my invoice"
price_date = 2026-01-31

[power]
idle_w = 40
tdp_w = 200
pue = 1.2
usd_per_kwh = 0.2
energy_included = false

[hardware]
cpu = "Test CPU"
vcpus = 8
memory_gb = 32
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture
def user_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "myprofiles"
    folder.mkdir()
    monkeypatch.setenv(cost.ENV_VAR, str(folder))
    return folder


@pytest.fixture(autouse=True)
def no_user_profiles(monkeypatch):
    monkeypatch.delenv(cost.ENV_VAR, raising=False)


# ---------------------------------------------------------------- built-ins


def test_every_builtin_profile_loads_with_a_source_and_a_date():
    names = cost.profile_names()
    assert len(names) >= 12
    for name in names:
        p = cost.load_profile(name)
        assert p.name == name  # files are named after their profile
        assert p.price_per_hour_usd > 0
        assert len(p.price_source) > 40 and ("http" in p.price_source or "github" in p.price_source)
        datetime.date.fromisoformat(p.price_date)
        assert 0 <= p.power.idle_w <= p.power.tdp_w
        assert p.hardware.get("cpu")


def test_builtins_cover_three_clouds_cpus_gpus_and_an_onprem_machine():
    profiles = cost.list_profiles()
    names = [p.name for p in profiles]
    for prefix in ("aws-", "gcp-", "azure-"):
        assert any(n.startswith(prefix) for n in names), prefix
    assert any(p.hardware.get("gpus") for p in profiles)
    assert any(not p.hardware.get("gpus") for p in profiles)
    onprem = [p for p in profiles if not p.power.energy_included]
    assert onprem, "at least one profile pays for its own electricity"
    for p in onprem:
        assert p.power.usd_per_kwh and p.power.usd_per_kwh > 0
        assert p.power.pue > 1


def test_builtin_prices_are_the_ones_read_from_the_sources():
    # Spot checks against the figures cited in price_source (us-east-1 / us-central1 / eastus).
    assert cost.load_profile("aws-g5-xlarge").price_per_hour_usd == 1.006
    assert cost.load_profile("aws-p5-48xlarge").price_per_hour_usd == 55.04
    assert cost.load_profile("gcp-n2-standard-8").price_per_hour_usd == 0.38847
    assert cost.load_profile("azure-nc4as-t4-v3").price_per_hour_usd == 0.526


def test_repo_root_profiles_folder_is_the_packaged_one():
    root = Path(__file__).resolve().parent.parent / "profiles"
    assert root.resolve() == cost.BUILTIN_DIR.resolve()


# ---------------------------------------------------------------- finding profiles


def test_a_path_to_a_toml_file_loads(tmp_path):
    path = _write(tmp_path, "box", GOOD.format(name="box", price=0.25))
    p = cost.load_profile(str(path))
    assert p.name == "box" and p.price_per_hour_usd == 0.25
    assert p.price_date == "2026-01-31"  # a bare TOML date becomes ISO text
    assert p.power == cost.PowerSpec(40.0, 200.0, 1.2, 0.2, False)
    assert p.hardware == {"cpu": "Test CPU", "vcpus": 8, "memory_gb": 32}
    assert p.path == str(path)


def test_user_folder_profiles_are_found_by_name_and_win_over_builtins(user_dir):
    _write(user_dir, "aws-g5-xlarge", GOOD.format(name="aws-g5-xlarge", price=0.5))
    _write(user_dir, "lab-box", GOOD.format(name="lab-box", price=0.75))
    assert cost.load_profile("aws-g5-xlarge").price_per_hour_usd == 0.5
    assert cost.load_profile("lab-box").price_per_hour_usd == 0.75
    names = [p.name for p in cost.list_profiles()]
    assert names.count("aws-g5-xlarge") == 1 and "lab-box" in names
    assert "aws-p5-48xlarge" in names  # built-ins still listed


def test_several_user_folders_are_searched_in_order(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    _write(first, "box", GOOD.format(name="box", price=1.0))
    _write(second, "box", GOOD.format(name="box", price=2.0))
    _write(second, "other", GOOD.format(name="other", price=3.0))
    monkeypatch.setenv(cost.ENV_VAR, os.pathsep.join([str(first), str(second)]))
    assert cost.load_profile("box").price_per_hour_usd == 1.0
    assert cost.load_profile("other").price_per_hour_usd == 3.0


def test_unknown_profile_lists_the_known_names():
    with pytest.raises(BadInput) as exc:
        cost.load_profile("aws-g99-mega")
    assert "unknown profile 'aws-g99-mega'" in exc.value.message
    assert "aws-g5-xlarge" in exc.value.hint and "onprem-rtx4090" in exc.value.hint


def test_missing_profile_file_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        cost.load_profile(str(tmp_path / "nope.toml"))


# ---------------------------------------------------------------- errors name file and field


def _error_for(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, "bad", text)
    with pytest.raises(BadInput) as exc:
        cost.load_profile(str(path))
    assert "bad.toml" in exc.value.message
    return exc.value.message


def test_toml_syntax_error_names_file_and_line(tmp_path):
    message = _error_for(tmp_path, 'name = "x"\nprice_per_hour_usd = = 3\n')
    assert "not valid TOML" in message and "line 2" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("tdp_w = 200", 'tdp_w = "lots"', "[power].tdp_w must be a number"),
        ("idle_w = 40\n", "", "missing [power].idle_w"),
        ('price_source = "my invoice"\n', "", "missing price_source"),
        ("price_per_hour_usd = 0.5", "price_per_hour_usd = -1", "must not be negative"),
        ("price_per_hour_usd = 0.5", "price_per_hour_usd = true", "must be a number"),
        ("idle_w = 40", "idle_w = 400", "idle_w (400) is above [power].tdp_w (200)"),
        ("pue = 1.2", "pue = 0.9", "[power].pue must be at least 1"),
        ("usd_per_kwh = 0.2\n", "", "usd_per_kwh is required when energy_included = false"),
        ("energy_included = false", 'energy_included = "no"', "energy_included must be true"),
        ("vcpus = 8", 'vcpus = "eight"', "[hardware].vcpus must be an integer"),
        ("price_date = 2026-01-31", "price_date = 20260131", "price_date must be a date"),
        ("[power]", "[powr]", "missing [power] table"),
    ],
)
def test_a_bad_field_is_named(tmp_path, old, new, expected):
    text = GOOD.format(name="bad", price=0.5)
    assert old in text
    assert expected in _error_for(tmp_path, text.replace(old, new, 1))


def test_profile_dict_round_trip_and_checked_on_the_way_back():
    p = cost.load_profile("onprem-rtx4090")
    d = cost.profile_to_dict(p)
    assert json.loads(json.dumps(d)) == d
    assert cost.profile_from_dict(d) == p
    broken = dict(d, power=dict(d["power"], pue="high"))
    with pytest.raises(BadInput, match=r"report profile: \[power\].pue must be a number"):
        cost.profile_from_dict(broken)


# ---------------------------------------------------------------- the command


def _run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from benchbox.cli import main

    monkeypatch.setattr(sys, "argv", ["benchbox", *args])
    monkeypatch.setenv("COLUMNS", "200")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_list_json_has_every_profile(monkeypatch, capsys):
    code, out, _ = _run(monkeypatch, capsys, "profiles", "list", "--json")
    assert code == 0
    data = json.loads(out)
    assert [d["name"] for d in data] == cost.profile_names()
    assert all(d["price_source"] and d["price_date"] for d in data)


def test_cli_bare_profiles_prints_the_table(monkeypatch, capsys):
    code, out, _ = _run(monkeypatch, capsys, "profiles")
    assert code == 0
    assert "aws-p4d-24xlarge" in out and "21.96" in out and "$0.1278/kWh" in out


def test_cli_show_by_name_and_by_file(monkeypatch, capsys, tmp_path):
    code, out, _ = _run(monkeypatch, capsys, "profiles", "show", "aws-g6-xlarge")
    assert code == 0 and "0.8048" in out and "us-east-1" in out
    path = _write(tmp_path, "box", GOOD.format(name="box", price=0.25))
    code, out, _ = _run(monkeypatch, capsys, "profiles", "show", str(path), "--json")
    assert code == 0 and json.loads(out)["price_per_hour_usd"] == 0.25


def test_cli_show_unknown_exits_2_with_one_line(monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, "profiles", "show", "nope")
    assert code == 2 and out == ""
    assert err.startswith("error: unknown profile 'nope'") and "Traceback" not in err


# ---------------------------------------------------------------- matching fields, folders, shadows


def test_at_least_24_builtins_each_with_the_fields_matching_needs():
    profiles = cost.list_profiles()
    assert len(profiles) >= 24
    for p in profiles:
        hw = p.hardware
        assert isinstance(hw.get("gpu_count"), int), p.name
        if hw["gpu_count"]:
            assert hw.get("gpu_model"), p.name
        if hw.get("cpu") != "host not included":  # a GPU card alone has no CPU to match
            assert hw.get("cpu_vendor") and hw.get("cpu_family") and hw.get("vcpus"), p.name
        # the explicit fields agree with the descriptions people read
        read = pricing.profile_hardware(schema.replace(p, hardware={"cpu": hw.get("cpu", "")}))
        if read.cpu_vendor:
            assert read.cpu_vendor == hw["cpu_vendor"] and read.cpu_family == hw["cpu_family"]


def test_builtins_cover_amd_arm_and_a_two_vcpu_amd_machine():
    by_name = {p.name: p for p in cost.list_profiles()}
    for name in ("aws-c7a-large", "aws-m7a-large", "aws-c7g-large", "aws-c8g-large"):
        assert name in by_name
    assert by_name["aws-c7a-large"].hardware["vcpus"] == 2
    assert by_name["aws-c7a-large"].hardware["cpu_vendor"] == "AMD"
    assert by_name["aws-c7g-large"].hardware["cpu_family"] == "Neoverse V1"
    assert by_name["aws-c8g-large"].hardware["cpu_family"] == "Neoverse V2"
    # spot checks against the us-east-1 rows cited in price_source
    assert by_name["aws-c7a-large"].price_per_hour_usd == 0.10264
    assert by_name["aws-m7a-xlarge"].price_per_hour_usd == 0.23184
    assert by_name["aws-c7g-large"].price_per_hour_usd == 0.0725
    assert by_name["aws-c8g-2xlarge"].price_per_hour_usd == 0.31904


def test_a_missing_profiles_folder_is_an_error_not_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv(cost.ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(BadInput, match=r"BENCHBOX_PROFILES names .*nope, which does not exist"):
        cost.profile_names()
    with pytest.raises(BadInput, match="does not exist"):
        pricing.check_choice("auto")


def test_a_profiles_folder_that_is_a_file_is_an_error(tmp_path, monkeypatch):
    path = _write(tmp_path, "box", GOOD.format(name="box", price=1.0))
    monkeypatch.setenv(cost.ENV_VAR, str(path))
    with pytest.raises(BadInput, match=r"box\.toml, which is a file, not a folder") as exc:
        cost.load_profile("aws-g5-xlarge")
    assert "folder that holds your .toml profiles" in exc.value.hint


def test_a_user_profile_named_like_a_builtin_says_it_wins(user_dir, monkeypatch, capsys):
    mine = _write(user_dir, "aws-c7a-large", GOOD.format(name="aws-c7a-large", price=0.5))
    p = cost.load_profile("aws-c7a-large")
    assert p.price_per_hour_usd == 0.5
    assert cost.shadowed_builtin(p) == cost.BUILTIN_DIR / "aws-c7a-large.toml"
    assert cost.shadowed_builtin(cost.load_profile("aws-g5-xlarge")) is None
    report = schema.Report(
        host=schema.HostInfo("h", "Linux", "Test CPU", 8, 4, 32.0, "3.11", "1.32"),
        model=schema.ModelInfo("m.onnx", "ab" * 32, 17, ()),
        cells=(),
        settings=schema.SweepSettings(profile="aws-c7a-large"),
        profile=p,
    )
    assert pricing.pricing_lines(report)[0] == (
        f"priced as aws-c7a-large; your {mine} wins over the built-in of that name"
    )
    code, out, _ = _run(monkeypatch, capsys, "profiles", "list")
    assert code == 0 and "note: aws-c7a-large is yours" in out and "wins over the built-in" in out
    code, out, _ = _run(monkeypatch, capsys, "profiles", "show", "aws-c7a-large")
    assert code == 0 and "wins over the built-in profile of that name" in out


def _matching_profile(folder: Path, name: str, price: float) -> Path:
    """A user profile whose [hardware] is this very host, so `auto` finds it on any machine."""
    host = host_info()
    text = GOOD.format(name=name, price=price).replace(
        'cpu = "Test CPU"\nvcpus = 8',
        f"cpu = {json.dumps(host.cpu_model)}\nvcpus = {host.cpu_cores_logical}",
    )
    vendor, family, _ = pricing.cpu_traits(host.cpu_model)
    text += (
        f"cpu_vendor = {json.dumps(vendor or 'Unknown')}\ncpu_family = {json.dumps(family or '')}\n"
    )
    text += f"gpu_count = {len(host.gpus)}\n"
    if host.gpus:
        text += f"gpu_model = {json.dumps(host.gpus[0].name)}\n"
    return _write(folder, name, text)


def test_run_prices_by_default_and_says_which_profile(user_dir, monkeypatch, capsys, tmp_path):
    if pricing.cpu_traits(host_info().cpu_model)[0] is None:
        pytest.skip("this CPU does not name its vendor, so nothing can match it")
    _matching_profile(user_dir, "this-box", 0.0001)  # cheaper than any built-in that matches
    # One trial: what is priced is asked here, not how many trials (up to 10 when auto) it took.
    quick = ["--duration", "0.2s", "--warmup", "0.05s", "--window", "0.1s", "--trials", "1"]
    out_dir = str(tmp_path / "r")
    code, out, err = _run(monkeypatch, capsys, "run", "mlp", *quick, "--out", out_dir)
    assert code == 0, err
    assert "priced as this-box (matches " in out
    assert "per million inferences" in out
    (saved,) = (tmp_path / "r").glob("*.json")
    report = load_report(saved)
    assert report.profile.name == "this-box" and report.settings.profile == "auto"
    assert report.cells[0].result.cost_usd_per_million > 0
    code, out, err = _run(
        monkeypatch, capsys, "run", "mlp", *quick, "--out", out_dir, "--profile", "none"
    )
    assert code == 0, err
    assert "priced as" not in out
    newest = max((tmp_path / "r").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    assert load_report(newest).profile is None


def test_recommend_compare_and_html_say_when_pricing_is_on_other_hardware(
    tmp_path, monkeypatch, capsys
):
    from fixtures_reports import make_report

    from benchbox.report import html
    from benchbox.store import save_report

    # measured on an 8-vCPU Xeon 8375C with an A10G; aws-c7a-large is 2 AMD vCPUs, no GPU
    a = save_report(make_report(hostname="a", price_per_hour_usd=None), tmp_path / "a.json")
    b = save_report(
        make_report(hostname="b", cpu_model="AMD EPYC", gpus=(), price_per_hour_usd=None),
        tmp_path / "b.json",
    )
    code, out, err = _run(
        monkeypatch, capsys, "recommend", str(a), "--latency-target", "p99=20ms",
        "--profile", "aws-c7a-large",
    )  # fmt: skip
    assert code == 0, err
    said = " ".join(out.split())
    assert "pricing on other hardware: profile aws-c7a-large is AMD EPYC 9R14" in said
    assert "the report measured Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz, 8 vCPU" in said
    assert "(CPU, vCPUs, GPU differ)" in said
    code, out, err = _run(
        monkeypatch, capsys, "compare", str(a), str(b), "--mode", "machines",
        "--profile", "aws-c7a-large", "--latency-target", "p99=20ms",
    )  # fmt: skip
    assert code == 0, err
    said = " ".join(out.split())
    assert "! a.json: pricing on other hardware: profile aws-c7a-large" in said
    assert "b.json: pricing on other hardware" in said  # AMD EPYC, but 8 vCPU, not 2
    priced = cost.price_report(load_report(a), cost.load_profile("aws-c7a-large"))
    page = html.render_html(priced)
    assert '<p class="verdict bad">pricing on other hardware: profile aws-c7a-large' in page
    matched = cost.price_report(load_report(b), cost.load_profile("aws-c7a-large"))
    assert "pricing on other hardware" not in html.render_html(
        schema.replace(matched, host=schema.replace(matched.host, cpu_cores_logical=2))
    )


def test_whether_a_profile_was_built_in_is_recorded_by_the_sweep_not_asked_of_the_renderer(
    tmp_path,
):
    from benchbox.store import load_report, save_report

    # A built-in profile as another installation recorded it: its path is that machine's.
    here = cost.load_profile("aws-c7a-large")
    assert here.builtin is True and here.shadows_builtin is False
    elsewhere = schema.replace(
        here, path="/other/venv/site-packages/benchbox/profiles/aws-c7a-large.toml"
    )
    report = schema.Report(
        host=schema.HostInfo("h", "Linux", "Test CPU", 8, 4, 32.0, "3.11", "1.32"),
        model=schema.ModelInfo("m.onnx", "ab" * 32, 17, ()),
        cells=(),
        settings=schema.SweepSettings(profile="aws-c7a-large"),
        profile=elsewhere,
    )
    path = tmp_path / "r.json"
    save_report(report, path)
    loaded = load_report(path)
    assert loaded.profile.builtin is True and loaded.profile.shadows_builtin is False
    assert pricing.pricing_lines(loaded)[0] == "priced as aws-c7a-large"
    assert "wins over" not in pricing.pricing_lines(loaded)[0]

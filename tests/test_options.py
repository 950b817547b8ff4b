"""Options declared once: the commands' flags come from one table whose defaults are the option
sets' dataclasses, `sweep` and `fleet` given the same flags record the same settings, and a
command's --help imports none of the stages."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys
from types import SimpleNamespace

import pytest

from benchbox.commands import command_words, room_command
from benchbox.commands import options as cli_options
from benchbox.options import AB_TRIALS, DEPTH, MeasureOptions, TrialOptions
from benchbox.sweep import sweep_settings

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ["--batch", "1,2", "--concurrency", "1,2", "--threads", "1", "--duration", "0.4s"]
SHARED += ["--warmup", "0.2s", "--trials", "2", "--seed", "7", "--latency-target", "p99=9ms"]
SHARED += ["--shape", "seq=16", "--search", "grid", "--trial-precision", "4%"]


def given(command: str, args: list[str]) -> SimpleNamespace:
    """The values a command's body gets for `args`, as the command line parses them."""
    cmd = room_command(command)
    ctx = cmd.make_context(command, list(args))
    return SimpleNamespace(**ctx.params)


def defaults(command: str) -> dict:
    return {p.name: p.default for p in room_command(command).params}


def test_sweep_and_fleet_given_the_same_flags_record_the_same_settings(bert_path):
    from benchbox.commands.sweep import sweep_options
    from benchbox.sweep.request import build_request

    shared = [str(bert_path), *SHARED]
    sweep = build_request(sweep_options(given("sweep", shared)))
    fleet = build_request(sweep_options(given("fleet", [*shared, "--group", "a=aws-c7i-2xlarge"])))
    assert sweep_settings(sweep) == sweep_settings(fleet)
    assert sweep.trials == fleet.trials and sweep.settings == fleet.settings
    # and with no flags at all (the defaults, which had drifted apart: 1s/3s, 1.5s/6s)
    assert sweep_settings(build_request(sweep_options(given("sweep", [str(bert_path)])))) == (
        sweep_settings(
            build_request(sweep_options(given("fleet", [str(bert_path), "--group", "a=x"])))
        )
    )


@pytest.mark.parametrize("command", ["sweep", "fleet", "ab"])
def test_the_grid_commands_measuring_defaults_are_the_option_sets(command):
    d = defaults(command)
    grid = MeasureOptions()
    for field in dataclasses.fields(MeasureOptions):
        if field.name in d:
            assert d[field.name] == getattr(grid, field.name), field.name
    assert d["trials"] == TrialOptions().trials and d["max_trials"] == TrialOptions().max_trials


def test_run_differs_only_where_it_measures_in_depth_and_ab_only_in_its_precision():
    run, sweep, ab = defaults("run"), defaults("sweep"), defaults("ab")
    differs = {f.name for f in dataclasses.fields(MeasureOptions) if f.name in run}
    differs = {n for n in differs if run[n] != sweep[n]}
    assert differs == {"warmup", "window", "min_duration", "max_duration"}
    assert all(run[n] == getattr(DEPTH, n) for n in differs)
    assert ab["trial_precision"] == AB_TRIALS.precision != sweep["trial_precision"]


def test_each_option_is_declared_once_in_the_table():
    flags: dict[tuple, cli_options.Opt] = {}  # a list of batch sizes and one are two options
    for name in dir(cli_options):
        value = getattr(cli_options, name)
        for o in value if isinstance(value, tuple) else (value,):
            if isinstance(o, cli_options.Opt):
                flags.setdefault((o.name, o.type), o)
                assert flags[(o.name, o.type)] is o, f"{o.name} is declared twice"


def test_a_command_given_an_option_twice_is_refused_where_it_is_declared():
    import typer

    with pytest.raises(ValueError, match="given twice"):
        cli_options.command(typer.Typer(), cli_options.SEED, cli_options.SEED)
    with pytest.raises(ValueError, match="does not take"):
        cli_options.command(typer.Typer(), cli_options.SEED, defaults={"nosuch": 1})


HEAVY = ("numpy", "onnx", "onnxruntime", "scipy", "pandas", "pydantic", "ray", "aiohttp")


def every_command() -> list[list[str]]:
    """Every command and subcommand the app has, read from the app (a command added later is
    covered without a line here)."""
    from typer.main import get_command

    from benchbox.cli import app

    return command_words(get_command(app))


# One process asks every help in turn, through the console entry point, and notes what each
# has imported: a stage imported by one help shows under that command.
HELP_CHILD = """
import contextlib, io, json, sys
from benchbox.cli import main
HEAVY = set(sys.argv[2].split(","))
answers = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["benchbox", *argv]
    out, err, code = io.StringIO(), io.StringIO(), None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
    answers.append({"argv": argv, "code": code, "out": out.getvalue(), "err": err.getvalue(),
                    "heavy": heavy})
print(json.dumps(answers))
"""


def ask_in_one_process(argvs: list[list[str]]) -> list[dict]:
    import json

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", HELP_CHILD, json.dumps(argvs), ",".join(HEAVY)],
        capture_output=True, text=True, env=env, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_command_is_found_in_the_app():
    found = every_command()
    for words in (["sweep"], ["run"], ["fleet"], ["ab"], ["verify"], ["devices"], ["recommend"]):
        assert words in found
    for words in (["compare"], ["models", "build"], ["report", "show"], ["profiles", "show"]):
        assert words in found
    assert ["report", "export"] in found and ["models", "list"] in found


def test_help_imports_no_stage():
    commands = every_command()
    for answer in ask_in_one_process([[*words, "--help"] for words in commands]):
        shown = " ".join(answer["argv"][:-1])
        assert answer["code"] == 0, (shown, answer["err"])
        assert answer["out"].startswith(f"Usage: benchbox {shown} "), (shown, answer["out"][:80])
        assert not answer["heavy"], f"`{shown} --help` imports {answer['heavy'][:5]}"


def test_version_and_no_arguments_answer_without_a_stage():
    from benchbox import __version__

    version, bare = ask_in_one_process([["--version"], []])
    assert version["code"] == 0 and version["out"] == f"benchbox {__version__}\n"
    # No command is a usage error (exit 2), answered with the help and its list of commands.
    assert bare["code"] == 2 and "Traceback" not in bare["err"]
    assert bare["err"].startswith("Usage: benchbox ") and "\n  sweep " in bare["err"]
    assert not version["heavy"] and not bare["heavy"], (version["heavy"], bare["heavy"])

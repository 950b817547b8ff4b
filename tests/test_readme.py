"""The README's tour runs as written: every `$ benchbox ...` command of its fenced blocks, in order,
in a fresh folder, exits as the tour says, and prints the lines the tour shows."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
# Lines of the tour's sample output that must appear in the real output too: they start with
# one of these (the figures after them vary from run to run and machine to machine).
KEY_PREFIXES = (
    "model ",
    "host ",
    "Recommendation",
    "report saved:",
    "  Time (mean ± σ):",
    "  Throughput:",
    "  Resources:",
    "  cost ",
    "Fleet:",
    "wrote deploy/",
)
# A gate (exit 1: nothing meets the target, a regression) is a result the README describes, and on
# a busy shared machine the tour's p99=50ms can be missed; then the lines only a success prints
# (the cost, the fleet, the export) are not asked for, and the error must be the gate's own line.
SUCCESS_ONLY = ("  cost ", "Fleet:", "wrote deploy/")


def tour_blocks(text: str) -> list[tuple[str, list[str]]]:
    """Each `$ benchbox ...` command of the tour's fenced blocks, with its sample output."""
    tour = text.split("## A short tour", 1)[1].split("\n## ", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", tour, flags=re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if not line.startswith("$ "):
                if steps:
                    steps[-1][1].append(line)
                continue
            command = line[2:]
            while command.endswith("\\") and i < len(lines):
                command = command[:-1].rstrip() + " " + lines[i].strip()
                i += 1
            steps.append((command, []))
    return steps


def test_the_tour_is_parsed_into_its_commands():
    steps = tour_blocks(README.read_text())
    commands = [shlex.split(c)[1] for c, _ in steps]
    assert commands[:3] == ["sweep", "run", "recommend"], commands
    assert "compare" in commands
    assert all(shlex.split(c)[0] == "benchbox" for c, _ in steps)


def test_the_readme_tour_runs_as_written(tmp_path):
    env = {**os.environ, "COLUMNS": "160", "BENCHBOX_CACHE": os.environ.get("BENCHBOX_CACHE", "")}
    if not env["BENCHBOX_CACHE"]:
        env.pop("BENCHBOX_CACHE")
    src = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    steps = tour_blocks(README.read_text())
    assert len(steps) >= 5
    for command, sample in steps:
        # The shell expands the tour's globs (`reports/resnet18-*.json`) as a reader's would.
        argv = shlex.split(command)
        line = f"{shlex.quote(sys.executable)} -m benchbox " + command.split(" ", 1)[1]
        done = subprocess.run(
            line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        why = f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert done.returncode in (0, 1), why
        assert "Traceback" not in done.stderr, done.stderr
        if done.returncode == 1:  # a gate, said in one line (and a hint)
            errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1, why
            assert "no configuration meets" in errors[0] or "regressed" in errors[0], why
        for shown in sample:
            key = next((p for p in KEY_PREFIXES if shown.startswith(p)), None)
            if key is None or (done.returncode == 1 and key in SUCCESS_ONLY):
                continue
            assert key in done.stdout, f"{command}: {key!r} missing from\n{done.stdout}"
    assert argv[1] == "compare"


# The README's sample tables were printed at this terminal width (the sweep's table drops p90,
# CPU% and RSS when they do not fit, so the width decides the columns).
SAMPLE_COLUMNS = "130"
READ_ME_DATA = Path(__file__).resolve().parent / "data" / "readme"
# The reports the samples' runs saved (tests/data/readme/): a command that reads one replays on
# it; the sweep that measured one is replayed as `report show`, which prints the sweep's view.
SAVED = {
    "reports/resnet18-*.json": "resnet18.json",
    "before/mlp-*.json": "mlp-before.json",
    "after/mlp-*.json": "mlp-after.json",
}
MEASURED_BY = {"benchbox sweep --duration 1s": "resnet18.json"}


def table_headers(lines: list[str]) -> list[list[str]]:
    """The column names of every rich table in `lines`: the row above each `╇` rule."""
    heads = []
    for above, line in zip(lines, lines[1:], strict=False):
        if "╇" in line and "┃" in above:
            heads.append([name.strip() for name in above.split("┃") if name.strip()])
    return heads


def replay(command: str) -> list[str] | None:
    """The command to run for a sample, on the saved reports; None when it cannot be replayed."""
    if command in MEASURED_BY:
        return ["report", "show", str(READ_ME_DATA / MEASURED_BY[command])]
    argv = shlex.split(command)[1:]
    if not any(arg in SAVED for arg in argv):
        return None
    for option in ("--export", "--out"):  # writing files changes no table
        if option in argv:
            k = argv.index(option)
            del argv[k : k + 2]
    return [str(READ_ME_DATA / SAVED[arg]) if arg in SAVED else arg for arg in argv]


def shown_in(shown: list[list[str]], printed: list[list[str]], cut: bool) -> bool:
    """The sample's tables are the printed ones; with a `...` cut, the printed ones in order."""
    if not cut:
        return shown == printed
    rest = iter(printed)
    return all(any(table == other for other in rest) for table in shown)


def test_the_readme_sample_tables_have_the_columns_the_commands_print(tmp_path):
    env = {**os.environ, "COLUMNS": SAMPLE_COLUMNS}
    src = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    checked = 0
    for command, sample in tour_blocks(README.read_text()):
        shown = table_headers(sample)
        if not shown:
            continue
        argv = replay(command)
        assert argv is not None, f"{command}: a sample table with no saved report to replay on"
        done = subprocess.run(
            [sys.executable, "-m", "benchbox", *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode in (0, 1), f"{argv}\n{done.stdout}\n{done.stderr}"
        printed = table_headers(done.stdout.splitlines())
        cut = "..." in sample
        assert shown_in(shown, printed, cut), (
            f"{command}: README columns {shown}, printed {printed}"
        )
        checked += 1
    assert checked >= 3  # the sweep, recommend and compare samples

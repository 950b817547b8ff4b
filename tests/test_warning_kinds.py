"""The registry of cell-label kinds is the one list: every kind the code writes is a member, the
JSON strings stay as old reports wrote them, and the README's list matches it both ways."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import benchbox
from benchbox.schema import CellWarning, from_dict, to_dict
from benchbox.warning_kinds import NOTE_KINDS, WarningKind

ROOT = Path(benchbox.__file__).resolve().parent
README = ROOT.parent / "README.md"

# The strings reports have written since 1.0: a rename would orphan old reports' labels.
WRITTEN_BEFORE = {
    "duration-extended", "early-stop", "few-trials", "generator-behind", "generator-busy",
    "graph-optimization", "high-variation", "host-copies", "io-binding", "no-power",
    "no-server-split", "openvino", "oversubscribed", "peak-search", "placement", "plugin-ep",
    "pool-exhausted", "precision", "ray-node", "request-errors", "slow-first-window",
    "too-few-samples", "trial-failed", "unstable", "unstable-trials",
}  # fmt: skip
# Kinds added since, each with the schema version that first wrote it.
ADDED = {
    "accuracy": "2.1",
    "own-spread": "2.1",
    "repeat-faster": "2.1",
    "generator-lost": "2.1",
    "generator-limit": "2.1",
    "generators-auto": "2.1",
}


def readme_kinds(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(warnings, notes) of the README's list: kind -> meaning."""
    section = text.split("\n## Cell warnings and notes\n", 1)[1].split("\n## ", 1)[0]
    warnings_part, _, notes_part = section.partition("\nNotes:")
    item = re.compile(r"^- `([a-z0-9-]+)`: (.+)$", re.M)
    return dict(item.findall(warnings_part)), dict(item.findall(notes_part))


def test_the_json_strings_are_the_ones_reports_wrote():
    assert {k.value for k in WarningKind} == WRITTEN_BEFORE | ADDED.keys()
    w = CellWarning(WarningKind.IO_BINDING, "inputs stay on cuda:0")
    assert json.dumps(to_dict(w)) == '{"kind": "io-binding", "text": "inputs stay on cuda:0"}'
    back = from_dict(CellWarning, {"kind": "io-binding", "text": "x"})
    assert back.kind == WarningKind.IO_BINDING and WarningKind(back.kind).is_note
    assert from_dict(CellWarning, "unstable: never settled").kind == WarningKind.UNSTABLE


def test_every_kind_has_a_one_line_meaning():
    for kind in WarningKind:
        assert kind.meaning and "\n" not in kind.meaning and len(kind.meaning) <= 80, kind


def test_notes_are_the_kinds_that_say_how_a_cell_ran():
    assert {str(k) for k in NOTE_KINDS} == {
        "openvino", "precision", "plugin-ep", "host-copies", "io-binding", "placement",
        "graph-optimization", "peak-search", "generators-auto",
    }  # fmt: skip


def test_the_readme_lists_every_kind_with_its_meaning_and_nothing_else():
    warnings, notes = readme_kinds(README.read_text())
    want_warnings = {k.value: k.meaning for k in WarningKind if not k.is_note}
    want_notes = {k.value: k.meaning for k in WarningKind if k.is_note}
    expected = "\n".join(
        ["Warnings:", *(f"- `{k}`: {m}" for k, m in want_warnings.items())]
        + ["Notes:", *(f"- `{k}`: {m}" for k, m in want_notes.items())]
    )
    assert (warnings, notes) == (want_warnings, want_notes), "README should list:\n" + expected
    assert list(warnings) == list(want_warnings) and list(notes) == list(want_notes)


def _warning_kind_args() -> list[tuple[str, ast.expr]]:
    """(file:line, first argument) of every `CellWarning(...)` call in benchbox's source."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "CellWarning"
                and node.args
            ):
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node.args[0]))
    return found


def test_the_code_writes_every_kind_through_the_registry():
    calls = _warning_kind_args()
    assert len(calls) > 20
    used = set()
    for where, arg in calls:
        if where.startswith("schema.py"):  # the 1.0 "kind: text" decoder passes a parsed kind
            continue
        assert (
            isinstance(arg, ast.Attribute)
            and isinstance(arg.value, ast.Name)
            and arg.value.id == "WarningKind"
        ), f"{where}: a CellWarning kind is written as {ast.unparse(arg)}, not a WarningKind"
        used.add(WarningKind[arg.attr])
    assert used == set(WarningKind), f"kinds nothing writes: {set(WarningKind) - used}"

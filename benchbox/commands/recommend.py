"""`benchbox recommend`: the cheapest (or fastest, or leanest) config meeting a latency target.

The stages (the recommender, the exporters, the view) are imported when the command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from benchbox import parse, schema
from benchbox.commands.options import JsonOption, choice_option
from benchbox.errors import BadInput, GateFailed
from benchbox.kinds import ExportKind, Objective

app = typer.Typer()

ReportArg = Annotated[Path, typer.Argument(metavar="REPORT", help="A report JSON file.")]
TargetOpt = Annotated[
    str, typer.Option("--latency-target", help="The bound to meet, e.g. p99=20ms.")
]
ObjectiveOpt = Annotated[
    Objective, choice_option(Objective, "--objective", "objective", help="What to rank by.")
]
QpsOpt = Annotated[
    float | None, typer.Option("--qps", help="Size a fleet for this many requests per second.")
]
HeadroomOpt = Annotated[
    float, typer.Option("--headroom", help="Run each replica at this share of its throughput.")
]
MinThroughputOpt = Annotated[
    float | None,
    typer.Option("--min-throughput", help="Reject cells below this many inferences/s."),
]
MaxMemoryOpt = Annotated[
    float | None, typer.Option("--max-memory-mb", help="Reject cells needing more memory (MB).")
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Price the report on this profile: a name, a .toml file, or auto (the profile "
        "matching the report's host).",
    ),
]
ExportOpt = Annotated[
    ExportKind | None,
    choice_option(ExportKind, "--export", "export format", help="Write the winner in this format."),
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="The folder to write the export to.")]
ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", help="The ONNX file to export (default: the report's)."),
]
StorageOpt = Annotated[
    str | None,
    typer.Option("--storage-uri", help="KServe: where the model is stored (s3://, ...)."),
]
NameOpt = Annotated[
    str | None, typer.Option("--name", help="The exported model / InferenceService name.")
]


# ---- precision options (issue 25)
AccuracyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--accuracy",
        help="Accuracy bound: top1>=99%, cosine>=0.999, max-abs<=1e-3, rel<=1e-2, label>=90%; "
        "NAME:cosine>=0.99 for one output (repeat or comma-separate).",
    ),
]
# ---- end of precision options


@app.command(name="recommend")
def recommend_cmd(
    report_path: ReportArg,
    latency_target: TargetOpt,
    objective: ObjectiveOpt = Objective.COST,
    qps: QpsOpt = None,
    headroom: HeadroomOpt = 0.8,
    min_throughput: MinThroughputOpt = None,
    max_memory_mb: MaxMemoryOpt = None,
    profile: ProfileOpt = None,
    export_kind: ExportOpt = None,
    out: OutOpt = None,
    model: ModelOpt = None,
    storage_uri: StorageOpt = None,
    name: NameOpt = None,
    as_json: JsonOption = False,
    accuracy: AccuracyOpt = None,  # precision options (issue 25)
) -> None:
    """Recommend the config that meets a latency target at the best objective; export it."""
    from rich.console import Console
    from rich.markup import escape

    from benchbox.export import check_export_source, export_recommended
    from benchbox.recommend import recommend_file
    from benchbox.report.recommend_view import render_recommendation

    target = parse.parse_target(latency_target)
    _check_export_out(export_kind, out)
    report, rec = recommend_file(
        report_path,
        target,
        objective=objective,
        qps=qps,
        headroom=headroom,
        min_throughput_ips=min_throughput,
        max_memory_mb=max_memory_mb,
        profile=profile,
        accuracy=tuple(accuracy or ()),
    )
    if export_kind is not None:  # a server's report, a missing file: before anything is printed
        check_export_source(export_kind, report, rec, model)

    def export() -> list[Path]:
        if export_kind is None or rec.winner is None:
            return []
        return export_recommended(export_kind, report, rec, out, model, storage_uri, name)

    if as_json:
        _print_json(report, rec, export())
    else:
        console = Console()
        render_recommendation(report, rec, console)
        for path in export():  # after the answer is on screen, so a failed export does not hide it
            console.print(f"wrote {escape(str(path))}", highlight=False)

    if rec.winner is None:
        bounds = [str(target)]
        if min_throughput is not None:
            bounds.append(f"--min-throughput {min_throughput:g}")
        if max_memory_mb is not None:
            bounds.append(f"--max-memory-mb {max_memory_mb:g}")
        bounds.extend(rec.accuracy)
        hint = "relax the bounds, or measure other devices or configs"
        if export_kind is not None:
            hint = "nothing was exported; " + hint
        raise GateFailed(f"no configuration meets {' and '.join(bounds)}", hint)


def _print_json(report: schema.Report, rec: schema.Recommendation, written: list[Path]) -> None:
    """The recommendation, the winning cell and the files exported, as JSON on stdout."""
    from benchbox.pricing import mismatch_text

    winner = next((c for c in report.cells if c.id == rec.winner), None)
    doc = {
        "recommendation": schema.to_dict(rec),
        "winner": schema.to_dict(winner) if winner else None,
        "exported": [str(p) for p in written],
        "pricing_note": mismatch_text(report),
    }
    sys.stdout.write(json.dumps(schema.finite(doc), indent=1) + "\n")


def _check_export_out(export_kind: ExportKind | None, out: Path | None) -> None:
    """--export and --out go together."""
    if export_kind is not None and out is None:
        raise BadInput(f"--export {export_kind} needs --out DIR", "e.g. --out deploy/")
    if export_kind is None and out is not None:
        raise BadInput("--out is only used with --export", "add --export triton, for example")

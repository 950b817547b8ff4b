"""`benchbox recommend`: the cheapest (or fastest, or leanest) config meeting a latency target."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from benchbox import schema
from benchbox.errors import BadInput, GateFailed, NothingMeasured

OBJECTIVES = ("cost", "throughput", "energy")
EXPORTS = ("triton", "onnxruntime", "kserve")


def register(app: typer.Typer) -> None:
    """Add `recommend`."""
    if any(c.name == "recommend" for c in app.registered_commands):
        return  # register_all may run more than once in one process (tests)

    @app.command(name="recommend")
    def recommend_cmd(
        report_path: Annotated[Path, typer.Argument(metavar="REPORT", help="A report JSON file.")],
        latency_target: Annotated[
            str,
            typer.Option("--latency-target", help="The bound to meet, e.g. p99=20ms."),
        ],
        objective: Annotated[
            str, typer.Option("--objective", help="cost, throughput or energy.")
        ] = "cost",
        qps: Annotated[
            float | None,
            typer.Option("--qps", help="Size a fleet for this many requests per second."),
        ] = None,
        headroom: Annotated[
            float,
            typer.Option("--headroom", help="Run each replica at this share of its throughput."),
        ] = 0.8,
        min_throughput: Annotated[
            float | None,
            typer.Option("--min-throughput", help="Reject cells below this many inferences/s."),
        ] = None,
        max_memory_mb: Annotated[
            float | None,
            typer.Option("--max-memory-mb", help="Reject cells needing more memory (MB)."),
        ] = None,
        profile: Annotated[
            str | None,
            typer.Option("--profile", help="Price the report on this profile (name or .toml)."),
        ] = None,
        export_kind: Annotated[
            str | None,
            typer.Option("--export", help="Write the winner as triton, onnxruntime or kserve."),
        ] = None,
        out: Annotated[
            Path | None, typer.Option("--out", help="The folder to write the export to.")
        ] = None,
        model: Annotated[
            Path | None,
            typer.Option("--model", help="The ONNX file to export (default: the report's)."),
        ] = None,
        storage_uri: Annotated[
            str | None,
            typer.Option("--storage-uri", help="KServe: where the model is stored (s3://, ...)."),
        ] = None,
        name: Annotated[
            str | None,
            typer.Option("--name", help="The exported model / InferenceService name."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    ) -> None:
        """Recommend the config that meets a latency target at the best objective; export it."""
        from benchbox import parse
        from benchbox.recommend import recommend, with_recommendation
        from benchbox.report.store import load_report

        target = parse.parse_target(latency_target)
        objective = objective.strip().lower()
        if objective not in OBJECTIVES:
            raise BadInput(
                f"--objective {objective!r} is not known", "choose cost, throughput or energy"
            )
        if export_kind is not None:
            export_kind = export_kind.strip().lower()
            if export_kind not in EXPORTS:
                raise BadInput(
                    f"--export {export_kind!r} is not known",
                    "choose triton, onnxruntime or kserve",
                )
            if out is None:
                raise BadInput(f"--export {export_kind} needs --out DIR", "e.g. --out deploy/")
        elif out is not None:
            raise BadInput("--out is only used with --export", "add --export triton, for example")

        report = load_report(report_path)
        if profile is not None:
            from benchbox import cost

            report = cost.price_report(report, cost.load_profile(profile))
        if not any(c.status in schema.MEASURED for c in report.cells):
            counts = ", ".join(
                f"{sum(c.status == s for c in report.cells)} {s}"
                for s in ("failed", "skipped", "pending")
                if any(c.status == s for c in report.cells)
            )
            raise NothingMeasured(
                f"no cell of this report was measured ({counts}): nothing to recommend",
                f"fix the failures, then `benchbox sweep --resume {report_path}`",
            )
        rec = recommend(
            report,
            target,
            objective=objective,
            qps=qps,
            headroom=headroom,
            min_throughput_ips=min_throughput,
            max_memory_mb=max_memory_mb,
        )
        report = with_recommendation(report, rec)

        exporting = export_kind is not None and rec.winner is not None
        if as_json:
            written: list[Path] = []
            if exporting:
                written = _export(export_kind, report, rec, out, model, storage_uri, name)
            winner = next((c for c in report.cells if c.id == rec.winner), None)
            doc = {
                "recommendation": schema.to_dict(rec),
                "winner": schema.to_dict(winner) if winner else None,
                "exported": [str(p) for p in written],
            }
            sys.stdout.write(json.dumps(schema.finite(doc), indent=1) + "\n")
        else:
            from benchbox.report.recommend_view import render_recommendation

            console = Console()
            render_recommendation(report, rec, console)
            if exporting:  # after the answer is on screen, so a failed export does not hide it
                for path in _export(export_kind, report, rec, out, model, storage_uri, name):
                    console.print(f"wrote {path}", highlight=False)

        if rec.winner is None:
            hint = "relax the target, or measure other devices or configs"
            if export_kind is not None:
                hint = "nothing was exported; " + hint
            raise GateFailed(f"no configuration meets {target}", hint)


def _export(
    kind: str,
    report: schema.Report,
    rec: schema.Recommendation,
    out: Path,
    model: Path | None,
    storage_uri: str | None,
    name: str | None,
) -> list[Path]:
    from benchbox.export import export

    if kind == "triton":
        return export(kind, report, rec.winner, out, model_name=name, model_path=model)
    if kind == "kserve":
        return export(
            kind,
            report,
            rec.winner,
            out,
            fleet=rec.fleet,
            profile=report.profile,
            model_uri=storage_uri,
            name=name,
        )
    return export(kind, report, rec.winner, out)

"""Realistic synthetic reports for the report/compare/export tests (no model is run).

Latencies follow a small queueing model (service time grows with batch size, latency with
concurrency beyond the device's parallelism), drawn as seeded lognormal samples and summarised
with the real stats module, so histograms, percentiles and CIs are consistent with each other.
"""

from __future__ import annotations

import math

import numpy as np

from benchbox import schema
from benchbox.measure import stats

MODEL_SHA = "3f" * 32
TARGET_MS = 20.0

# (fixed ms, ms per item in the batch, requests served in parallel, idle W, W per busy worker)
_DEVICE_MODEL = {
    "cpu": (2.0, 0.9, 1.6, 60.0, 12.0),
    "cuda:0": (1.2, 0.08, 3.0, 140.0, 35.0),
}


def price_profile(name: str, price_per_hour_usd: float) -> schema.Profile:
    """A minimal price profile for a synthetic report (cloud price, power included)."""
    return schema.Profile(
        name, "", price_per_hour_usd, "test", "2026-01-01", schema.PowerSpec(50.0, 200.0)
    )


def host(
    hostname: str = "bench-a",
    cpu_model: str = "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
    gpus: tuple[str, ...] = ("NVIDIA A10G",),
    onnxruntime: str = "1.32.0",
    python: str = "3.11.7",
) -> schema.HostInfo:
    """A host description with the fields the comparisons look at."""
    providers = ("CPUExecutionProvider",)
    if gpus:
        providers = ("CUDAExecutionProvider", "CPUExecutionProvider")
    return schema.HostInfo(
        hostname=hostname,
        os="Linux-6.1.0-x86_64",
        cpu_model=cpu_model,
        cpu_cores_logical=8,
        cpu_cores_physical=4,
        memory_gb=32.0,
        python=python,
        onnxruntime=onnxruntime,
        providers=providers,
        gpus=tuple(schema.GpuInfo(name=g, memory_gb=24.0, driver="550.54") for g in gpus),
    )


def model(sha256: str = MODEL_SHA) -> schema.ModelInfo:
    """The demo model's description."""
    return schema.ModelInfo(
        path="/models/resnet-tiny.onnx",
        sha256=sha256,
        opset=17,
        inputs=(schema.TensorSpec("pixels", "float32", ("batch", 3, 64, 64)),),
        outputs=(schema.TensorSpec("logits", "float32", ("batch", 10)),),
    )


def make_result(
    samples_ms: np.ndarray,
    batch_size: int,
    concurrency: int,
    power_w: float | None,
    price_per_hour_usd: float | None,
    keep_samples: bool,
) -> schema.Result:
    """A Result summarised from raw samples with the real stats functions."""
    samples_ms = np.sort(np.asarray(samples_ms, dtype=float))
    mean_s = float(samples_ms.mean()) / 1000.0
    requests_per_s = concurrency / mean_s
    throughput_ips = requests_per_s * batch_size
    duration_s = len(samples_ms) / requests_per_s
    cost = None
    if price_per_hour_usd is not None:
        cost = price_per_hour_usd / (3600.0 * throughput_ips) * 1e6
    return schema.Result(
        requests=len(samples_ms),
        inferences=len(samples_ms) * batch_size,
        duration_s=duration_s,
        throughput_ips=throughput_ips,
        requests_per_s=requests_per_s,
        latency_ms=stats.summarize(samples_ms),
        latency_ci_ms=stats.latency_cis(samples_ms),
        confidence=0.95,
        cpu_util_pct=min(100.0, 25.0 * concurrency),
        rss_mb=180.0 + 6.0 * batch_size,
        power_w=power_w,
        energy_j_per_inference=None if power_w is None else power_w / throughput_ips,
        power_source=None if power_w is None else "estimate",
        cost_usd_per_million=cost,
        histogram=stats.histogram_from_samples(samples_ms),
        windows=3,
        samples_ms=[float(x) for x in samples_ms] if keep_samples else None,
    )


def _samples(rng: np.random.Generator, median_ms: float, sigma: float, n: int) -> np.ndarray:
    return rng.lognormal(mean=math.log(median_ms), sigma=sigma, size=n)


def make_report(
    *,
    hostname: str = "bench-a",
    cpu_model: str = "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
    gpus: tuple[str, ...] = ("NVIDIA A10G",),
    onnxruntime: str = "1.32.0",
    python: str = "3.11.7",
    benchbox_version: str = "0.1.0",
    sha256: str = MODEL_SHA,
    devices: tuple[str, ...] = ("cpu", "cuda:0"),
    batches: tuple[int, ...] = (1, 8),
    concurrencies: tuple[int, ...] = (1, 2, 4, 8),
    rates_rps: tuple[float, ...] = (),
    slowdown: float = 1.0,
    slowdown_cells: tuple[str, ...] | None = None,
    seed: int = 0,
    n_samples: int = 400,
    keep_samples: bool = False,
    price_per_hour_usd: float | None = 2.5,
    profile_name: str = "test-gpu-box",
    with_power: bool = True,
    target_ms: float | None = TARGET_MS,
    include_failed: bool = True,
    created: str = "2025-05-01T12:00:00Z",
) -> schema.Report:
    """A complete report: a closed-loop grid, optional open-loop rates, a failed cell, a verdict.

    `slowdown` multiplies every latency (or only those of `slowdown_cells`), to fake a regression.
    """
    rng = np.random.default_rng(seed)
    cells: list[schema.Cell] = []
    loads = [schema.Load("closed", concurrency=c) for c in concurrencies]
    loads += [
        schema.Load("open", concurrency=16, rate_rps=r, distribution="poisson") for r in rates_rps
    ]
    for device in devices:
        fixed_ms, per_item_ms, parallel, idle_w, busy_w = _DEVICE_MODEL[device]
        for batch in batches:
            config = schema.ServingConfig(device=device, intra_op_threads=2, batch_size=batch)
            service_ms = fixed_ms + per_item_ms * batch
            for load in loads:
                cid = schema.cell_id(config, load)
                if load.kind == "closed":
                    inflight = float(load.concurrency or 1)
                else:  # open loop: utilisation from the rate, queueing as in M/M/1
                    util = min(0.95, (load.rate_rps or 0) * service_ms / 1000.0 / parallel)
                    inflight = parallel / (1.0 - util)
                # Little's law with `parallel` servers: throughput saturates at parallel/service.
                median_ms = service_ms * (1.0 + (inflight - 1.0) / parallel)
                if slowdown_cells is None or cid in slowdown_cells:
                    median_ms *= slowdown
                sigma = 0.15 + 0.04 * math.log2(inflight + 1)
                samples = _samples(rng, median_ms, sigma, n_samples)
                power_w = idle_w + busy_w * min(inflight, parallel * 2) if with_power else None
                result = make_result(
                    samples,
                    batch,
                    int(round(inflight)) if load.kind == "open" else (load.concurrency or 1),
                    power_w,
                    price_per_hour_usd,
                    keep_samples,
                )
                if load.kind == "open":
                    result = schema.replace(
                        result,
                        requests_per_s=load.rate_rps,
                        throughput_ips=(load.rate_rps or 0) * batch,
                        achieved_rate_rps=load.rate_rps,
                    )
                    result = _reprice(result, price_per_hour_usd)
                cells.append(schema.Cell(cid, config, load, status="ok", result=result))
    if include_failed:
        config = schema.ServingConfig(device=devices[-1], intra_op_threads=2, batch_size=64)
        load = schema.Load("closed", concurrency=8)
        cells.append(
            schema.Cell(
                schema.cell_id(config, load),
                config,
                load,
                status="failed",
                reason="out of memory allocating 1.2 GB (batch 64)",
            )
        )
    profile = None
    if price_per_hour_usd is not None:
        profile = price_profile(profile_name, price_per_hour_usd)
    report = schema.Report(
        host=host(hostname, cpu_model, gpus, onnxruntime, python),
        model=model(sha256),
        cells=tuple(cells),
        settings=schema.SweepSettings(
            measure=schema.MeasureSettings(duration_s=5.0), search="grid"
        ),
        profile=profile,
        benchbox_version=benchbox_version,
        created=created,
    )
    if target_ms is not None:
        report = schema.replace(report, recommendation=simple_recommendation(report, target_ms))
    return report


def _reprice(result: schema.Result, price_per_hour_usd: float | None) -> schema.Result:
    tput = result.throughput_ips
    cost = None if price_per_hour_usd is None else price_per_hour_usd / (3600.0 * tput) * 1e6
    energy = None if result.power_w is None else result.power_w / tput
    return schema.replace(result, cost_usd_per_million=cost, energy_j_per_inference=energy)


def simple_recommendation(report: schema.Report, target_ms: float) -> schema.Recommendation:
    """What recommend() would say for p99 <= target: cheapest (or fastest) cell whose CI fits."""
    priced = report.profile is not None
    ok: list[tuple[float, schema.Cell]] = []
    rejected: dict[str, str] = {}
    for cell in report.cells:
        if cell.result is None:
            rejected[cell.id] = f"{cell.status}: {cell.reason}"
            continue
        ci = (cell.result.latency_ci_ms or {}).get("p99")
        bound = ci[1] if ci else cell.result.latency_ms.p99
        if bound > target_ms:
            rejected[cell.id] = f"p99 upper bound {bound:.1f} ms > {target_ms:g} ms"
            continue
        key = cell.result.cost_usd_per_million if priced else -cell.result.throughput_ips
        ok.append((key, cell))
    ok.sort(key=lambda kc: kc[0])
    measured = [c for c in report.cells if c.result is not None]
    return schema.Recommendation(
        objective="cost" if priced else "throughput",
        percentile="p99",
        target_ms=target_ms,
        profile=report.profile.name if priced else None,
        winner=ok[0][1].id if ok else None,
        runners_up=tuple(c.id for _, c in ok[1:3]),
        pareto=tuple(pareto_ids(measured)) if priced else (),
        rejected=rejected,
    )


def pareto_ids(cells: list[schema.Cell]) -> list[str]:
    """Cells no other cell beats on both p99 and cost (lower is better on both)."""
    front, best_cost = [], math.inf
    for cell in sorted(cells, key=lambda c: c.result.latency_ms.p99):
        if cell.result.cost_usd_per_million < best_cost:
            front.append(cell.id)
            best_cost = cell.result.cost_usd_per_million
    return front

"""Fidelity: how punctual benchbox's open loop is, with MLPerf LoadGen's Server scenario as anchor.

For the zoo `bert` and the tiny `mlp` (batch 1, 1 intra-op thread, 1 session), at 30%, 50% and
80% of the peak rate (a bare session.run loop at concurrency 1, measured first):
- `benchbox run --load open --concurrency 2` (Poisson): the generator's send delay p50/p99
  (issue_delay_ms: lateness of the send, pool waits excluded), the achieved rate, latency p99;
- LoadGen's Server scenario at the same target QPS on the same model, with a SUT of 2 worker
  threads fed by a queue: its achieved (completed) rate and latency p99 (from the scheduled
  time, as benchbox's). Needs `pip install mlcommons-loadgen` (the `dev` extra).
Beside each benchbox run, a separate process that only sleeps to random due times records how late
it wakes (`machine p99`): the floor the machine sets for any thread woken from a sleep;
`delay/machine` is the median over the runs of the send delay p99 over that run's machine p99.
Every round runs every (model, rate, tool) once, in an order that alternates between rounds,
each in its own process; figures are medians over the rounds. Goals: send delay p99 < 0.5 ms
at 50% and < 1 ms at 80%; benchbox's latency p99 within +-10% of LoadGen's at 50%.

`--causes` instead measures the causes of send lateness on their own (the figures the README's
"How it measures" quotes): how late a sleep ends at the default timer slack and at 1 ns; how late
the issuer's wait ends beside a thread running Python bytecode at a 5 ms and a 0.2 ms switch
interval; and the issuer's own Python cost per request.

`--before DIR` also runs `benchbox run` from another checkout (e.g. the main branch) in the same
rounds, at the same rates, for before/after figures.

    python benchmarks/fidelity.py [--seconds 4] [--rounds 3] [--models bert,mlp] [--before DIR]
    python benchmarks/fidelity.py --causes
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import onnxruntime as ort

from benchbox import model as model_mod
from benchbox import zoo
from benchbox.load.issuer import (
    PR_SET_TIMERSLACK,
    Issuer,
    fine_timer_slack,
    lower_switch_interval,
    restore_switch_interval,
    wait_until,
)

SHARES = (0.3, 0.5, 0.8)
WORKERS = 2


def session(path: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def feeds_for(path: str) -> list[dict]:
    return model_mod.synthesize_inputs(model_mod.inspect_model(path), 1, pool_size=4)


def bare_rps(path: str, seconds: float) -> float:
    """Requests per second of a bare session.run loop at concurrency 1, after a 1 s warm-up."""
    sess, feeds = session(path), feeds_for(path)
    i = 0
    for deadline in (time.perf_counter() + 1.0, None):
        if deadline is None:
            t0, i0 = time.perf_counter(), i
            deadline = t0 + seconds
        while time.perf_counter() < deadline:
            sess.run(None, feeds[i % 4])
            i += 1
    return (i - i0) / (time.perf_counter() - t0)


def sleeper_child(seconds: float) -> dict:
    """How late a thread that does nothing but sleep to random due times wakes (ms)."""
    late_ns = []
    end = time.perf_counter_ns() + int(seconds * 1e9)
    rng = np.random.default_rng(1)
    while time.perf_counter_ns() < end:
        due = time.perf_counter_ns() + int(rng.uniform(0.3e6, 1.5e6))
        time.sleep(max(due - time.perf_counter_ns(), 0) / 1e9)
        late_ns.append(time.perf_counter_ns() - due)
    a = np.sort(np.array(late_ns)) / 1e6
    return {"p50": float(a[len(a) // 2]), "p99": float(a[int(len(a) * 0.99)])}


def benchbox_open(path: str, rate: float, seconds: float, code: str | None = None) -> dict:
    """`benchbox run --load open` at `rate`, in its own process (from checkout `code` if given)."""
    env = dict(os.environ, PYTHONPATH=code) if code else None
    sleeper = subprocess.Popen(
        [sys.executable, __file__, "--sleeper-child", str(seconds + 2.0)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        p = subprocess.run(
            [sys.executable, "-m", "benchbox", "run", path, "--threads", "1", "--concurrency",
             str(WORKERS), "--load", "open", "--rate", f"{rate:.1f}", "--duration",
             f"{seconds}s", "--warmup", "1s", "--out", out, "--json"],
            capture_output=True, text=True, check=True, env=env,
        )  # fmt: skip
    r = json.loads(p.stdout)["cells"][0]["result"]
    delay = r["issue_delay_ms"] or {}
    machine = json.loads(sleeper.communicate()[0].strip().splitlines()[-1])
    return {
        "machine_p99": machine["p99"],
        # the generator's p99 lateness over the machine's, measured at the same moment
        "over_machine": (delay["p99"] / machine["p99"])
        if delay.get("p99") is not None and machine["p99"] > 0
        else None,
        "delay_p50": delay.get("p50"),
        "delay_p99": delay.get("p99"),
        "rps": r["achieved_rate_rps"] or r["requests_per_s"],
        "lat_p99": r["latency_ms"]["p99"],
    }


def loadgen_child(path: str, rate: float, seconds: float) -> dict:
    """LoadGen's Server scenario at `rate` on `path` (runs in this process)."""
    import mlperf_loadgen as lg  # the dev extra; only the child process needs it

    sess, feeds = session(path), feeds_for(path)
    for i in range(200):  # warm-up, as benchbox's 1 s does for its own sessions
        sess.run(None, feeds[i % 4])
    work: queue.SimpleQueue = queue.SimpleQueue()

    def worker() -> None:
        while True:
            item = work.get()
            if item is None:
                return
            sample_id, index = item
            sess.run(None, feeds[index % 4])
            lg.QuerySamplesComplete([lg.QuerySampleResponse(sample_id, 0, 0)])

    def issue(samples: list) -> None:
        for s in samples:
            work.put((s.id, s.index))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Server
    settings.mode = lg.TestMode.PerformanceOnly
    settings.server_target_qps = rate
    settings.server_target_latency_ns = 10**9
    settings.min_duration_ms = int(seconds * 1000)
    settings.max_duration_ms = int(seconds * 1000) + 2000
    settings.min_query_count = 1
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(1024, 1024, lambda s: None, lambda s: None)
    with tempfile.TemporaryDirectory() as out:
        log = lg.LogSettings()
        log.log_output.outdir = out
        log.log_output.copy_summary_to_stdout = False
        lg.StartTestWithLogSettings(sut, qsl, settings, log)
        with open(os.path.join(out, "mlperf_log_summary.txt")) as f:
            summary = f.read()
    for _ in threads:
        work.put(None)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    fields = {}
    for line in summary.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return {
        "rps": float(fields["Completed samples per second"]),
        "lat_p99": float(fields["99.00 percentile latency (ns)"]) / 1e6,
        "scheduled_rps": float(fields["Scheduled samples per second"]),
    }


def loadgen(path: str, rate: float, seconds: float) -> dict | None:
    """loadgen_child in a process of its own; None when LoadGen is not installed."""
    p = subprocess.run(
        [sys.executable, __file__, "--loadgen-child", path, str(rate), str(seconds)],
        capture_output=True, text=True,
    )  # fmt: skip
    if p.returncode != 0:
        if "No module named 'mlperf_loadgen'" in p.stderr:
            return None
        raise RuntimeError(f"LoadGen run failed: {p.stderr.strip().splitlines()[-1:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _lateness_us(wait, samples: int, rng: np.random.Generator) -> tuple[float, float]:
    """p50 and p99 (us) of how late `wait(due_ns)` returns, for due times 0.3-1.5 ms ahead."""
    late = []
    for _ in range(samples):
        due = time.perf_counter_ns() + int(rng.uniform(0.3e6, 1.5e6))
        wait(due)
        late.append(time.perf_counter_ns() - due)
    a = np.sort(np.array(late)) / 1e3
    return float(a[len(a) // 2]), float(a[int(len(a) * 0.99)])


def _sleep(due_ns: int) -> None:
    time.sleep(max(due_ns - time.perf_counter_ns(), 0) / 1e9)


def causes(rounds: int) -> None:
    """Each suspected cause of send lateness alone, in alternating rounds (medians printed)."""
    rng = np.random.default_rng(0)
    prctl = ctypes.CDLL(None).prctl
    figures: dict[str, list[tuple[float, float]]] = {}

    def in_thread(name: str, slack_ns: int, wait) -> None:
        def body() -> None:
            prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(slack_ns), 0, 0, 0)
            figures.setdefault(name, []).append(_lateness_us(wait, 300, rng))

        t = threading.Thread(target=body)
        t.start()
        t.join()

    for r in range(rounds):
        for slack in (50_000, 1) if r % 2 == 0 else (1, 50_000):
            in_thread(f"time.sleep, timer slack {slack} ns", slack, _sleep)
    stop = [False]

    def python_bytecode() -> None:
        while not stop[0]:
            x = 0
            for i in range(1000):
                x += i

    hog = threading.Thread(target=python_bytecode, daemon=True)
    hog.start()
    for r in range(rounds):
        for interval in (0.005, 0.0002) if r % 2 == 0 else (0.0002, 0.005):
            previous = lower_switch_interval(interval)
            try:
                in_thread(
                    f"wait_until beside a Python thread, switch interval {interval * 1e3:g} ms",
                    1,
                    lambda due: wait_until(due, [False]),
                )
            finally:
                restore_switch_interval(previous)
    stop[0] = True
    hog.join()
    print(f"{'':66} {'p50 us':>9} {'p99 us':>9}  (medians of {rounds} rounds of 300)")
    for name, v in figures.items():
        p50 = float(np.median([x[0] for x in v]))
        p99 = float(np.median([x[1] for x in v]))
        print(f"{name:66} {p50:9.1f} {p99:9.1f}")
    costs = []
    for _ in range(rounds):
        n = 100_000
        issuer = Issuer([0] * n)  # every request already due: no waiting, only bookkeeping
        issuer.start(time.perf_counter_ns())
        fine_timer_slack()
        t0 = time.perf_counter_ns()
        issuer.run(lambda i, intended, taken, sent: None)
        costs.append((time.perf_counter_ns() - t0) / n)
    print(f"issuer's Python cost per request (no-op send): {np.median(costs):.0f} ns")


def _median(results: list[dict], key: str) -> float | None:
    values = [r[key] for r in results if r is not None and r.get(key) is not None]
    return float(np.median(values)) if values else None


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="bert,mlp")
    ap.add_argument("--before", metavar="DIR", help="also run benchbox from this checkout")
    ap.add_argument("--loadgen-child", nargs=3, metavar=("MODEL", "RATE", "SECONDS"))
    ap.add_argument("--sleeper-child", type=float, metavar="SECONDS")
    ap.add_argument("--causes", action="store_true", help="measure the causes of lateness alone")
    args = ap.parse_args()
    if args.causes:
        causes(max(args.rounds, 4))
        return
    if args.sleeper_child:
        print(json.dumps(sleeper_child(args.sleeper_child)))
        return
    if args.loadgen_child:
        path, rate, seconds = args.loadgen_child
        print(json.dumps(loadgen_child(path, float(rate), float(seconds))))
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    paths = {m: str(zoo.path_for(m)) for m in models}
    peak = {m: float(np.median([bare_rps(paths[m], 2.0) for _ in range(3)])) for m in models}
    for m in models:
        print(f"{m}: bare session.run loop, c=1: {peak[m]:,.0f} req/s (median of 3)", flush=True)
    cases = [(m, s) for m in models for s in SHARES]
    runs: dict[tuple[str, float, str], list] = {}
    for r in range(args.rounds):
        order = cases if r % 2 == 0 else cases[::-1]
        for m, share in order:
            rate = peak[m] * share
            tools = ["benchbox", "loadgen"] + (["before"] if args.before else [])
            for tool in tools if r % 2 == 0 else tools[::-1]:
                if tool == "loadgen":
                    result = loadgen(paths[m], rate, args.seconds)
                else:
                    code = args.before if tool == "before" else None
                    result = benchbox_open(paths[m], rate, args.seconds, code)
                runs.setdefault((m, share, tool), []).append(result)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"\nmedians over {args.rounds} rounds; {WORKERS} workers; Poisson arrivals; ms")
    print(
        f"{'model':6} {'rate':>5} {'target/s':>9} | {'delay p50':>9} {'delay p99':>9} "
        f"{'req/s':>8} {'lat p99':>8} | {'LG req/s':>8} {'LG p99':>8} | {'p99 vs LG':>9} "
        f"{'machine p99':>11} {'delay/machine':>13}"
    )
    has_loadgen = True
    for m, share in cases:
        b = runs[(m, share, "benchbox")]
        g = runs[(m, share, "loadgen")]
        has_loadgen = has_loadgen and any(x is not None for x in g)
        bp99, gp99 = _median(b, "lat_p99"), _median(g, "lat_p99")
        vs = f"{bp99 / gp99 - 1:+.0%}" if bp99 is not None and gp99 else "-"
        print(
            f"{m:6} {share:>5.0%} {peak[m] * share:>9,.0f} | {_fmt(_median(b, 'delay_p50')):>9} "
            f"{_fmt(_median(b, 'delay_p99')):>9} {_fmt(_median(b, 'rps'), ',.0f'):>8} "
            f"{_fmt(bp99):>8} | {_fmt(_median(g, 'rps'), ',.0f'):>8} {_fmt(gp99):>8} | {vs:>9} "
            f"{_fmt(_median(b, 'machine_p99')):>11} {_fmt(_median(b, 'over_machine'), '.2f'):>13}"
        )
        if args.before:  # the same cells from the other checkout, on the line below
            o = runs[(m, share, "before")]
            op99 = _median(o, "lat_p99")
            ovs = f"{op99 / gp99 - 1:+.0%}" if op99 is not None and gp99 else "-"
            print(
                f"{'before':>22} | {_fmt(_median(o, 'delay_p50')):>9} "
                f"{_fmt(_median(o, 'delay_p99')):>9} {_fmt(_median(o, 'rps'), ',.0f'):>8} "
                f"{_fmt(op99):>8} | {'':>8} {'':>8} | {ovs:>9} "
                f"{_fmt(_median(o, 'machine_p99')):>11} "
                f"{_fmt(_median(o, 'over_machine'), '.2f'):>13}"
            )
        d99 = _median(b, "delay_p99")
        goal = {0.5: 0.5, 0.8: 1.0}.get(share)
        if goal is not None and d99 is not None:
            verdict = "ok" if d99 < goal else "over"
            print(f"       send delay p99 {d99:.3f} ms: {verdict} (goal < {goal} ms)")
        if share == 0.5 and bp99 is not None and gp99:
            verdict = "ok" if abs(bp99 / gp99 - 1) <= 0.10 else "outside"
            print(f"       latency p99 vs LoadGen {bp99 / gp99 - 1:+.1%}: {verdict} (goal +-10%)")
    if not has_loadgen:
        print("LoadGen is not installed (pip install mlcommons-loadgen): no anchor figures")


if __name__ == "__main__":
    main()

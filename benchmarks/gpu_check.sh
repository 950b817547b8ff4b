#!/usr/bin/env bash
# benchmarks/gpu_check.sh: check benchbox on a machine with an NVIDIA GPU, in one go.
#
#   benchmarks/gpu_check.sh [WHEEL_DIR]
#
# 1. installs what is missing from local wheels when WHEEL_DIR (or $WHEELS) is given
#    (onnxruntime-gpu, nvidia-ml-py, benchbox's dependencies; nothing is downloaded);
# 2. runs `benchbox devices --json` and checks the GPUs, their memory and the NVML power source;
# 3. when onnxruntime-gpu is importable: a short `benchbox sweep` on cuda:0, checking that each
#    cell ran on the GPU with NVML power, energy per inference, GPU memory and utilisation, and
#    a plain vs io_binding run of the same model (the copy labels and both latencies);
# 4. always: NVML power, energy and memory during a GPU load (torch, else cupy, else a tiny
#    PTX kernel through the driver's libcuda with ctypes), read by benchbox's own NvmlMeter and
#    probes and cross-checked against sampled power.
# Prints PASS/FAIL per check and exits 1 when a check failed. About 1-2 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS="${1:-${WHEELS:-}}"
PY="${PYTHON:-python3}"
OUT="$(mktemp -d)"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
FAILED=0
section() { printf '\n== %s\n' "$*"; }
verdict() { # verdict NAME RC
  if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1"; FAILED=$((FAILED + 1)); fi
}

section "GPU"
if ! command -v nvidia-smi >/dev/null; then
  echo "nvidia-smi not found: no NVIDIA driver here"; verdict "nvidia driver" 1; exit 1
fi
nvidia-smi -L
nvidia-smi --query-gpu=index,name,driver_version,memory.total,memory.used,power.draw,power.limit \
  --format=csv

section "install"
if [ -n "$WHEELS" ]; then
  $PY -m pip install -q --no-index --find-links "$WHEELS" nvidia-ml-py 2>&1 | tail -2
  if ls "$WHEELS"/onnxruntime_gpu-*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --find-links "$WHEELS" onnxruntime-gpu 2>&1 | tail -2
  fi
  $PY -m pip install -q --no-index --find-links "$WHEELS" --no-build-isolation -e . 2>&1 | tail -2
fi
$PY - <<'EOF'
import importlib
for name in ("numpy", "onnx", "onnxruntime", "pynvml", "typer", "rich", "scipy", "psutil"):
    try:
        mod = importlib.import_module(name)
        print(f"{name:12} {getattr(mod, '__version__', 'ok')}")
    except Exception as exc:
        print(f"{name:12} MISSING ({exc})")
try:
    import onnxruntime as ort
    print("providers   ", ort.get_available_providers())
except Exception:
    pass
EOF
BENCHBOX_OK=0
$PY -c "import benchbox.cli, benchbox.measure.power" 2>/dev/null && BENCHBOX_OK=1
CUDA_EP=0
$PY -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" \
  2>/dev/null && CUDA_EP=1
echo "benchbox importable: $BENCHBOX_OK; onnxruntime CUDA EP: $CUDA_EP"
verdict "benchbox importable" $((1 - BENCHBOX_OK))
[ "$BENCHBOX_OK" -eq 1 ] || { echo "cannot go on without benchbox"; exit 1; }

section "benchbox devices --json"
$PY -m benchbox devices --json >"$OUT/devices.json"
verdict "devices --json exits 0" $?
$PY - "$OUT/devices.json" "$CUDA_EP" <<'EOF'
import json, sys
inv = json.load(open(sys.argv[1]))
cuda_ep = sys.argv[2] == "1"
problems = []
print("gpus:", [(g["index"], g["name"], g["memory_gb"]) for g in inv["gpus"]], inv["gpu_note"] or "")
print("all :", inv["all"])
if not inv["gpus"]:
    problems.append("no GPU in the inventory")
for g in inv["gpus"]:
    if not (g["memory_gb"] and 1 < g["memory_gb"] < 1024):
        problems.append(f"GPU {g['index']} memory {g['memory_gb']} GiB is not plausible")
nvml = next(p for p in inv["power_sources"] if p["name"] == "nvml")
print("nvml:", nvml)
if not nvml["available"]:
    problems.append("NVML power source not available")
rows = {r["device"]: r for r in inv["devices"]}
for r in inv["devices"]:
    if r["device"].startswith(("cuda:", "tensorrt:")):
        print(f"  {r['device']:12} usable={r['usable']} mem={r['memory_gb']} power={r['power']}"
              f" {r['why'] or ''}")
cuda0 = rows.get("cuda:0")
if cuda0 is None or not str(cuda0["power"]).startswith("nvml"):
    problems.append(f"cuda:0 row has no NVML power: {cuda0}")
if cuda_ep and not cuda0["usable"]:
    problems.append(f"onnxruntime-gpu is installed but cuda:0 is not usable: {cuda0['why']}")
if cuda_ep and "cuda:0" not in inv["all"]:
    problems.append("--device all lacks cuda:0")
for p in problems:
    print("problem:", p)
sys.exit(1 if problems else 0)
EOF
verdict "inventory lists the GPUs with memory and NVML power" $?

if [ "$CUDA_EP" -eq 1 ]; then
  section "benchbox sweep on cuda:0"
  $PY -m benchbox sweep resnet18 --device cuda:0 --batch 1,8 --concurrency 1,2 --threads 1 \
    --warmup 1s --duration 2s --out "$OUT" --json >"$OUT/sweep.json" 2>"$OUT/sweep.err"
  verdict "sweep on cuda:0 exits 0" $?
  tail -3 "$OUT/sweep.err"
  $PY - "$OUT/sweep.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
problems = []
for c in report["cells"]:
    r = c["result"] or {}
    print(f"{c['id']:32} {c['status']:8} p50={r.get('latency_ms', {}).get('p50')} ms "
          f"tput={r.get('throughput_ips')} power={r.get('power_w')} W ({r.get('power_source')}) "
          f"J/inf={r.get('energy_j_per_inference')} mem={r.get('gpu_mem_mb')} MiB "
          f"util={r.get('gpu_util_pct')}%")
    for w in c.get("warnings", []):  # {kind, text} since schema 1.1
        print("    warning:", f"{w['kind']}: {w['text']}" if isinstance(w, dict) else w)
    if c["status"] not in ("ok", "unstable"):
        problems.append(f"{c['id']}: {c['status']} {c['reason']}")
        continue
    if r.get("power_source") != "nvml" or not (5 < (r.get("power_w") or 0) < 1500):
        problems.append(f"{c['id']}: NVML power {r.get('power_w')} W not plausible")
    if not (r.get("energy_j_per_inference") or 0) > 0:
        problems.append(f"{c['id']}: no energy per inference")
    if not (r.get("gpu_mem_mb") or 0) > 0:
        problems.append(f"{c['id']}: no GPU memory reading")
    if r.get("gpu_util_pct") is None:
        problems.append(f"{c['id']}: no GPU utilisation reading")
for p in problems:
    print("problem:", p)
sys.exit(1 if problems else 0)
EOF
  verdict "GPU cells carry NVML power, energy, memory and utilisation" $?

  section "plain runner vs io_binding on cuda:0 (resnet18, batch 8)"
  $PY - <<'EOF'
import statistics, sys, time
from benchbox import model, zoo
from benchbox.backends import CellFailure, open_instances
from benchbox.schema import ServingConfig
path = str(zoo.path_for("resnet18"))
pool = model.synthesize_inputs(model.inspect_model(path), 8)
problems, medians = [], {}
for iob in (False, True):
    try:
        inst = open_instances(path, ServingConfig(device="cuda:0", batch_size=8, io_binding=iob))
    except CellFailure as exc:
        print("cell failure:", exc); sys.exit(1)
    run = inst.runners[0]
    for i in range(30):
        run(pool[i % len(pool)])
    times = []
    for i in range(300):
        t0 = time.perf_counter_ns(); run(pool[i % len(pool)]); times.append(time.perf_counter_ns() - t0)
    medians[iob] = statistics.median(times) / 1e6
    print(f"io_binding={iob}: p50 {medians[iob]:.3f} ms; providers {inst.providers[:2]}")
    for n in inst.notes:
        print("    note:", n)
    if inst.providers[0] != "CUDAExecutionProvider":
        problems.append(f"runs on {inst.providers[0]}")
    label = "excludes host<->device copies" if iob else "includes host<->device copies"
    if not any(label in n for n in inst.notes):
        problems.append(f"io_binding={iob}: no '{label}' label")
    inst.close()
print(f"io_binding / plain p50: {medians[True] / medians[False]:.3f}")
for p in problems:
    print("problem:", p)
sys.exit(1 if problems else 0)
EOF
  verdict "io_binding runs on the GPU and both runners are labelled" $?
else
  echo
  echo "onnxruntime-gpu is not installed: no benchbox sweep on the GPU (pass a wheel folder"
  echo "holding onnxruntime_gpu-*.whl to run it); checking NVML under a GPU load instead."
fi

section "NVML power, energy and memory under a GPU load"
$PY - <<'EOF'
import ctypes, sys, threading, time
import pynvml
from benchbox.devices import nvml_scan
from benchbox.measure.power import NvmlMeter, gpu_memory_mb, gpu_util_pct

SECONDS = 6.0
PTX = r"""
.version 7.0
.target sm_70
.address_size 64
.visible .entry busy(.param .u64 out, .param .u32 iters)
{
    .reg .pred %p<2>;
    .reg .f32 %f<4>;
    .reg .b32 %r<8>;
    .reg .b64 %rd<4>;
    ld.param.u64 %rd1, [out];
    ld.param.u32 %r1, [iters];
    cvta.to.global.u64 %rd1, %rd1;
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, %tid.x;
    mad.lo.s32 %r5, %r2, %r3, %r4;
    cvt.rn.f32.u32 %f1, %r5;
    mov.f32 %f2, 0f3F800000;
    mov.u32 %r6, 0;
$L_loop:
    fma.rn.f32 %f1, %f1, 0f3F7FFFEF, %f2;
    add.u32 %r6, %r6, 1;
    setp.lt.u32 %p1, %r6, %r1;
    @%p1 bra $L_loop;
    mul.wide.u32 %rd2, %r5, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.f32 [%rd3], %f1;
    ret;
}
"""


def torch_load():
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError("torch without CUDA")
    a = torch.randn(8192, 8192, device="cuda"); b = torch.randn(8192, 8192, device="cuda")
    hold = torch.empty(2**28, device="cuda")  # 1 GiB, visible in NVML memory
    def run(until):
        while time.perf_counter() < until:
            (a @ b).sum().item()
    return "torch matmul", run, hold


def cupy_load():
    import cupy as cp
    a = cp.random.rand(8192, 8192, dtype=cp.float32); b = cp.random.rand(8192, 8192, dtype=cp.float32)
    hold = cp.empty(2**28, dtype=cp.float32)
    def run(until):
        while time.perf_counter() < until:
            (a @ b).sum().item()
    return "cupy matmul", run, hold


def ptx_load():
    cuda = ctypes.CDLL("libcuda.so.1")
    def ck(rc, what):
        if rc != 0:
            msg = ctypes.c_char_p(); cuda.cuGetErrorString(rc, ctypes.byref(msg))
            raise RuntimeError(f"{what} failed: {rc} {msg.value}")
    ck(cuda.cuInit(0), "cuInit")
    dev = ctypes.c_int(); ck(cuda.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
    ctx = ctypes.c_void_p(); ck(cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "ctx")
    ck(cuda.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
    mod = ctypes.c_void_p(); ck(cuda.cuModuleLoadData(ctypes.byref(mod), ctypes.c_char_p(PTX.encode())), "PTX load")
    fn = ctypes.c_void_p(); ck(cuda.cuModuleGetFunction(ctypes.byref(fn), mod, b"busy"), "function")
    blocks, threads = 4096, 256
    out = ctypes.c_uint64(); ck(cuda.cuMemAlloc_v2(ctypes.byref(out), ctypes.c_size_t(blocks * threads * 4)), "alloc")
    hold = ctypes.c_uint64(); ck(cuda.cuMemAlloc_v2(ctypes.byref(hold), ctypes.c_size_t(2**30)), "alloc 1 GiB")
    iters = ctypes.c_uint32(200_000)
    params = (ctypes.c_void_p * 2)(ctypes.cast(ctypes.byref(out), ctypes.c_void_p),
                                   ctypes.cast(ctypes.byref(iters), ctypes.c_void_p))
    U = ctypes.c_uint
    cuda.cuLaunchKernel.argtypes = [ctypes.c_void_p, U, U, U, U, U, U, U, ctypes.c_void_p,
                                    ctypes.c_void_p, ctypes.c_void_p]
    def run(until):
        while time.perf_counter() < until:
            ck(cuda.cuLaunchKernel(fn, blocks, 1, 1, threads, 1, 1, 0, None,
                                   ctypes.cast(params, ctypes.c_void_p), None), "launch")
            ck(cuda.cuCtxSynchronize(), "sync")
    return "PTX FMA kernel via libcuda", run, hold


load = None
for make in (torch_load, cupy_load, ptx_load):
    try:
        load = make(); break
    except Exception as exc:
        print(f"{make.__name__}: not available ({exc})")
if load is None:
    print("problem: no way to load the GPU"); sys.exit(1)
name, run, hold = load
print("GPU load:", name)

scan = nvml_scan()
print("NVML scan:", [(g.index, g.name, g.memory_gb) for g in scan.gpus], scan.power, scan.note or "")
pynvml.nvmlInit()
h = pynvml.nvmlDeviceGetHandleByIndex(0)
limit_w = pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000
total_mb = pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**20

meter = NvmlMeter(0); meter.start(); time.sleep(2.0); idle = meter.stop()
print(f"idle : {idle.power_w} W over {idle.duration_s:.1f} s ({idle.detail}); limit {limit_w:.0f} W")

samples, util, mem = [], [], []
stop = threading.Event()
def sampler():
    while not stop.wait(0.1):
        samples.append(pynvml.nvmlDeviceGetPowerUsage(h) / 1000)
        util.append(gpu_util_pct(0)); mem.append(gpu_memory_mb(0))
run(time.perf_counter() + 1.0)  # ramp up
t = threading.Thread(target=sampler); t.start()
meter = NvmlMeter(0); meter.start()
run(time.perf_counter() + SECONDS)
busy = meter.stop(); stop.set(); t.join()
sampled = sum(samples) / len(samples) if samples else None
print(f"load : {busy.power_w} W, {busy.energy_j} J over {busy.duration_s:.1f} s ({busy.detail})")
print(f"sampled power {sampled} W ({len(samples)} samples); util max {max(u or 0 for u in util)}%;"
      f" memory max {max(m or 0 for m in mem):.0f} of {total_mb:.0f} MiB")

problems = []
if not (idle.power_w and 5 < idle.power_w < limit_w * 1.1):
    problems.append(f"idle power {idle.power_w} W not plausible")
if not (busy.power_w and busy.power_w < limit_w * 1.15):
    problems.append(f"load power {busy.power_w} W not plausible (limit {limit_w} W)")
elif idle.power_w and busy.power_w < idle.power_w + 10:
    problems.append(f"load power {busy.power_w} W is not above idle {idle.power_w} W")
if not (busy.energy_j and busy.energy_j > 0):
    problems.append(f"no energy over the load window: {busy.energy_j}")
# The energy counter (or benchbox's own sampling) against this script's independent samples.
if sampled and busy.power_w and abs(sampled - busy.power_w) > 0.25 * busy.power_w:
    problems.append(f"sampled {sampled:.0f} W and metered {busy.power_w:.0f} W differ by >25%")
if not any(m and 1024 <= m <= total_mb for m in mem):
    problems.append("NVML memory used never showed the 1 GiB held by the load")
if not any(u and u >= 50 for u in util):
    problems.append("NVML utilisation never reached 50% under load")
if "energy counter" not in (busy.detail or "") and "sampled" not in (busy.detail or ""):
    problems.append(f"unexpected NVML meter mode: {busy.detail}")
for p in problems:
    print("problem:", p)
sys.exit(1 if problems else 0)
EOF
verdict "NVML power, energy and memory plausible under load" $?

section "summary"
echo "outputs in $OUT"
if [ "$FAILED" -eq 0 ]; then echo "gpu_check: all checks passed"; else echo "gpu_check: $FAILED check(s) FAILED"; fi
exit $((FAILED > 0))

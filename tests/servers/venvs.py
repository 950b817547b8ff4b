"""Build and cache one venv per test server under ~/.cache/benchbox-test/<name>-<hash>/.

Each server pins numpy, protobuf or grpcio differently from benchbox's own environment, so it
runs from a venv of its own. The folder name carries a hash of the pinned requirements, so a
change of pins builds a new venv and an unchanged one is reused; a lock file keeps two test
processes from building the same venv at once. Run `python -m tests.servers.venvs NAME` to
build one ahead of time (it prints the build time).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import time

# Exact pins: a fresh machine builds the venv the tests were written against.
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "pytriton": ("nvidia-pytriton==0.7.0", "numpy<2", "onnxruntime==1.20.1"),
    "kserve": ("kserve==0.21.0", "onnxruntime==1.20.1"),
    "mlserver": ("mlserver==1.7.1", "onnxruntime==1.20.1"),
}
BUILD_TIMEOUT_S = 900


def cache_root() -> pathlib.Path:
    """Where the server venvs live (BENCHBOX_TEST_CACHE overrides ~/.cache/benchbox-test)."""
    env = os.environ.get("BENCHBOX_TEST_CACHE")
    return pathlib.Path(env) if env else pathlib.Path.home() / ".cache" / "benchbox-test"


def venv_dir(name: str) -> pathlib.Path:
    """The folder of one server's venv: its name plus a short hash of its pins and Python."""
    pins = "\n".join(REQUIREMENTS[name]) + f"\npython{sys.version_info[0]}.{sys.version_info[1]}"
    digest = hashlib.sha256(pins.encode()).hexdigest()[:10]
    return cache_root() / f"{name}-{digest}"


def python_of(name: str) -> pathlib.Path:
    """The interpreter of a server's venv, building the venv first when it is missing."""
    root = venv_dir(name)
    done = root / ".complete"
    if done.exists():
        return root / "bin" / "python"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            _build(name, root)
    return root / "bin" / "python"


def _build(name: str, root: pathlib.Path) -> None:
    if root.exists():
        shutil.rmtree(root)  # a half-built venv from an interrupted run
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120)
    pip = [
        str(root / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, *REQUIREMENTS[name]], check=True, timeout=BUILD_TIMEOUT_S)
    seconds = time.monotonic() - t0
    (root / ".complete").write_text(f"built in {seconds:.0f} s\n")


def server_env(name: str) -> dict[str, str]:
    """The environment a server process starts with (PyTriton's tritonserver links libpython)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env["LD_LIBRARY_PATH"] = ":".join(p for p in (libdir, env.get("LD_LIBRARY_PATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        t = time.monotonic()
        print(arg, python_of(arg), f"{time.monotonic() - t:.0f} s", flush=True)

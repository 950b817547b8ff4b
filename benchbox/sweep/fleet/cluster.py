"""The Ray cluster as a fleet sees it: connecting, its alive nodes and their labels, and the wait
for every group's nodes (bounded, so that a selector nothing matches never hangs).

Every module of the room reaches Ray through `require_ray()`, so that Ray, an optional extra,
is imported only when a fleet runs."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from benchbox.errors import BadInput
from benchbox.sweep.fleet.data import CONNECT_BOUND_S, GroupSpec

NODE_ID_LABEL = "ray.io/node-id"  # Ray labels every node with its id
CONNECT_TIMEOUT_S = 10.0


def require_ray() -> ModuleType:
    """The ray module, or BadInput saying what to install. Ray is an optional extra
    (`benchbox[ray]`), imported on first use: it takes a second, which no other command pays."""
    try:
        ray = importlib.import_module("ray")
        importlib.import_module("ray.exceptions")
    except ImportError:
        raise BadInput(
            "benchbox fleet needs Ray, which is not installed",
            "pip install 'benchbox[ray]'",
        ) from None
    return ray


@contextlib.contextmanager
def connected(address: str, bound_s: float = CONNECT_BOUND_S) -> Iterator[None]:
    """Inside, this process is connected to the Ray cluster at `address` (`auto`: RAY_ADDRESS or
    the cluster started on this machine); a connection made here is closed on the way out. A
    connection not made within `bound_s` is BadInput naming the address tried and the one Ray used.

    Ray prints the cluster's errors (a node marked dead) on stdout; inside, they go to stderr,
    so that `--json` output stays clean."""
    r = require_ray()
    with contextlib.redirect_stdout(sys.stderr):
        if r.is_initialized():  # a caller (a test, a notebook) already connected: use theirs
            yield
            return
        with _init(r, address, bound_s):
            yield


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """BadInput when nothing listens at the Ray address (ray.init would retry for minutes).
    `auto` is checked through RAY_ADDRESS; without it Ray looks for a local cluster itself."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "auto")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # `auto`, or a form Ray parses itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise BadInput(
            f"nothing answers at the Ray address {address} ({exc.strerror or exc})",
            _CONNECT_HINT,
        ) from None


_CONNECT_HINT = (
    "pass --ray ADDRESS (e.g. ray://127.0.0.1:10001 through `kubectl port-forward`), or set "
    "RAY_ADDRESS; a cluster with token auth also needs RAY_AUTH_MODE=token and RAY_AUTH_TOKEN"
)


@contextlib.contextmanager
def _init(r: Any, address: str, bound_s: float) -> Iterator[None]:
    check_reachable(address)
    try:
        _bounded_init(r, address, bound_s)
    except BadInput:
        raise
    except Exception as exc:  # ConnectionError, ValueError, AuthenticationError, ...
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        # A Ray Client server's refusal is a heading, then its traceback: the last line says why.
        why = " ... ".join(dict.fromkeys([lines[0], lines[-1]])) if lines else type(exc).__name__
        raise BadInput(
            f"cannot connect to the Ray cluster at {address!r}: {why[:300]}", _CONNECT_HINT
        ) from None
    try:
        yield
    finally:
        r.shutdown()


def _bounded_init(r: Any, address: str, bound_s: float) -> None:
    """`ray.init` in a thread, waited for at most `bound_s`. Past the bound the thread is left
    behind (Ray cannot be interrupted) and disconnects itself if it ever connects."""
    done = threading.Event()
    given_up = threading.Event()
    failure: list[BaseException] = []

    def init() -> None:
        try:
            r.init(
                address=address,
                namespace="benchbox",
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        except BaseException as exc:  # handed to the waiting thread
            failure.append(exc)
        else:
            if given_up.is_set():
                r.shutdown()
        finally:
            done.set()

    # Ray warns that it sets no SIGTERM handler off the main thread: the command has its own.
    quiet = _DropMessage("SIGTERM handler is not set")
    logging.getLogger("ray._private.worker").addFilter(quiet)
    threading.Thread(target=init, name="benchbox-ray-init", daemon=True).start()
    try:
        finished = done.wait(bound_s)
    finally:
        logging.getLogger("ray._private.worker").removeFilter(quiet)
    if not finished:
        given_up.set()
        raise BadInput(
            f"the Ray cluster at {address!r} did not accept a connection within {bound_s:g}s "
            f"(Ray tried {ray_used_address(address)})",
            "check that the address is the cluster's GCS (host:6379) or Ray Client "
            "(ray://host:10001) port and that Ray on this machine can reach that host; "
            + _CONNECT_HINT,
        )
    if failure:
        raise failure[0]


class _DropMessage(logging.Filter):
    """Drops the log records whose message starts with `prefix`."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def ray_used_address(address: str) -> str:
    """The address Ray connects to for `address`: Ray Client's as given; a GCS address with a
    loopback host rewritten to this machine's own address, as `ray.init` does."""
    if address.startswith("ray://"):
        return address
    try:
        from ray._private.services import canonicalize_bootstrap_address

        return canonicalize_bootstrap_address(address) or address
    except Exception:  # a private helper of Ray: if it moved, name the address as given
        return address


@dataclass(frozen=True)
class NodeView:
    """An alive node of the cluster as the GCS reports it."""

    node_id: str
    labels: dict[str, str]
    cpus: float
    gpus: float


def alive_nodes() -> list[NodeView]:
    """The cluster's alive nodes, with their labels and total CPUs and GPUs."""
    out = []
    for n in require_ray().nodes():
        if not n.get("Alive"):
            continue
        res = n.get("Resources") or {}
        out.append(
            NodeView(
                node_id=n["NodeID"],
                labels=dict(n.get("Labels") or {}),
                cpus=float(res.get("CPU", 0.0)),
                gpus=float(res.get("GPU", 0.0)),
            )
        )
    return out


def labels_seen(nodes: list[NodeView], label: str) -> str:
    """The values of `label` among the nodes, or (none carrying it) the other labels they have."""
    values = sorted({n.labels[label] for n in nodes if label in n.labels})
    if values:
        return ", ".join(f"{label}={v}" for v in values)
    other = sorted({f"{k}={v}" for n in nodes for k, v in n.labels.items() if k != NODE_ID_LABEL})
    return "no node has " + label + (f"; other labels: {', '.join(other)}" if other else "")


def wait_for_groups(
    groups: tuple[GroupSpec, ...], label: str, timeout_s: float
) -> dict[str, list[NodeView]]:
    """The alive nodes of every group, waiting up to `timeout_s` for nodes still joining (a
    cluster just applied); BadInput naming the first group no node carries, with the labels seen.

    Actors are only created for nodes that exist, so a fleet never waits on a selector that
    nothing matches (nor asks an autoscaler for nodes: a group needs running replicas)."""
    deadline = time.monotonic() + timeout_s
    while True:
        nodes = alive_nodes()
        found = {g.name: [n for n in nodes if n.labels.get(label) == g.name] for g in groups}
        missing = [g.name for g in groups if not found[g.name]]
        if not missing:
            return found
        if time.monotonic() >= deadline:
            raise BadInput(
                f"no node of group {missing[0]!r} ({label}={missing[0]}) joined within "
                f"{timeout_s:g}s; labels seen: {labels_seen(nodes, label)}",
                "check --group and --group-label against the cluster's worker groups "
                "(`ray list nodes --detail` shows their labels)",
            )
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def first_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__

"""The fleet's connection to Ray has a bound: a listener that is not Ray is refused in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("ray")

SCRIPT = textwrap.dedent(
    """
    import sys
    from benchbox.errors import BadInput
    from benchbox.sweep.fleet import cluster
    try:
        with cluster.connected(sys.argv[1], init_timeout_s=float(sys.argv[2])):
            print("CONNECTED")
    except BadInput as exc:
        print("BADINPUT " + str(exc))
        sys.exit(2)
    """
)


def test_ray_init_past_its_bound_names_the_address_tried_and_the_one_ray_used():
    # A real listening socket that is not Ray: the TCP pre-check passes, ray.init never returns.
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        address = f"127.0.0.1:{srv.getsockname()[1]}"
        p = subprocess.run(
            [sys.executable, "-c", SCRIPT, address, "3"],
            capture_output=True,
            text=True,
            timeout=120,  # a hang would otherwise hold the suite (the bound under test is 3 s)
            env={**os.environ},
        )
    assert p.returncode == 2, p.stderr[-2000:]
    line = next(x for x in p.stdout.splitlines() if x.startswith("BADINPUT"))
    assert f"tried {address}" in line
    assert "Ray used " in line and "CONNECTED" not in p.stdout

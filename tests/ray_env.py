"""The environment a test Ray cluster needs, set before Ray is imported (Ray reads it then).

- RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: every node binds 127.0.0.1, not the host's external address.
- RAY_AUTH_MODE=token with a random RAY_AUTH_TOKEN: token auth on, the token in the environment
  only (nothing written to ~/.ray); CLI processes started by tests inherit it.
- RAY_TMPDIR: the cluster's session files and its address file stay out of the shared /tmp/ray.
- RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S: the head's Ray Client proxy waits this long (default
  30 s) for the process it starts per client; on a loaded 2-core runner that start took longer.
"""

from __future__ import annotations

import os
import secrets


def prepare() -> str:
    """Set the variables (once per process); return the Ray temp folder (Ray creates it)."""
    if "BENCHBOX_TEST_RAY_TMPDIR" not in os.environ:  # short: Ray puts unix sockets there
        os.environ["BENCHBOX_TEST_RAY_TMPDIR"] = f"/tmp/bbray-{os.getpid()}-{secrets.token_hex(3)}"
    os.environ.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_AUTH_MODE="token",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_TMPDIR=os.environ["BENCHBOX_TEST_RAY_TMPDIR"],
        RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S="120",
    )
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
    return os.environ["RAY_TMPDIR"]

"""Shared fixtures: the zoo models, built once per session into a temporary cache."""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterator

import pytest
import ray_env

from benchbox import zoo

ray_env.prepare()  # before any test imports Ray

# pytest-xdist sets COLUMNS=80 and LINES=24 in its workers; the CLIs the tests run would then wrap
# their tables at 80 columns where the serial run (and a terminal of ours) gives them 160.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)

# The real test servers (PyTriton, KServe, MLServer), started by the tests that use them; the
# session's PyTriton and Ray cluster stopped after their last test (their modules run last).
pytest_plugins = ["last_use", "servers.fixtures"]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups it sends to its workers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import last_use

    last_use.mark_groups(config, items)


@pytest.fixture(scope="session", autouse=True)
def zoo_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    """BENCHBOX_CACHE in a temp folder for the session, so tests and the CLIs they start never
    write to ~/.cache; yields the zoo folder inside it."""
    root = tmp_path_factory.mktemp("benchbox-cache")
    old = os.environ.get("BENCHBOX_CACHE")
    os.environ["BENCHBOX_CACHE"] = str(root)
    yield root / "zoo"
    if old is None:
        os.environ.pop("BENCHBOX_CACHE", None)
    else:
        os.environ["BENCHBOX_CACHE"] = old


@pytest.fixture(scope="session")
def mlp_path(zoo_cache: pathlib.Path) -> pathlib.Path:
    """The tiny MLP: x float32 [batch, 64] -> logits [batch, 10]."""
    return zoo.path_for("mlp", cache=zoo_cache)


@pytest.fixture(scope="session")
def fixed_batch_path(zoo_cache: pathlib.Path) -> pathlib.Path:
    """The MLP with a fixed batch dimension of 1."""
    return zoo.path_for("mlp_fixed", cache=zoo_cache)


@pytest.fixture(scope="session")
def resnet_path(zoo_cache: pathlib.Path) -> pathlib.Path:
    """ResNet-18 at 64x64: input float32 [batch, 3, 64, 64] -> logits [batch, 1000]."""
    return zoo.path_for("resnet18", cache=zoo_cache)


@pytest.fixture(scope="session")
def bert_path(zoo_cache: pathlib.Path) -> pathlib.Path:
    """The 2-layer BERT-style encoder: input_ids, attention_mask int64 [batch, seq]."""
    return zoo.path_for("bert", cache=zoo_cache)


@pytest.fixture(scope="session")
def mixed_path(zoo_cache: pathlib.Path) -> pathlib.Path:
    """Inputs of every common dtype: float32, float16, int32 (ids < 50), bool; dynamic batch."""
    return zoo.path_for("mixed", cache=zoo_cache)


@pytest.fixture(scope="session")
def ray_cluster():
    """The local Ray cluster of tests/ray_cluster.py that the fleet and generator tests share
    (starting one takes ~20 s on a busy 2-core runner): RAY_GROUPS' nodes, RAY_GEN_NODES of group
    `gen`, a head serving Ray Client; this process connected. Yields (cluster, nodes by group).

    A test that takes nodes away (kills them) uses a group no other test counts on; one that
    adds nodes gives them a group of its own."""
    import last_use
    from ray_cluster import RAY_GEN_NODES, RAY_GROUPS, add_group_node, free_port, local_cluster

    with contextlib.ExitStack() as stack:
        c, nodes = stack.enter_context(local_cluster(RAY_GROUPS, client_port=free_port()))
        for _ in range(RAY_GEN_NODES - 1):
            add_group_node(c, "gen")
        c.wait_for_nodes()
        last_use.hold("ray_cluster", stack)
        yield c, nodes

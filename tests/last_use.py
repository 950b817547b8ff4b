"""pytest plugin: the session's heavy fixtures (a PyTriton server, a Ray cluster) are used by a few
modules, which run grouped, and each fixture is stopped right after its last test, so that it
is neither started twice nor left running for the rest of the suite.

A fixture opts in by handing its ExitStack to `hold(name, stack)`; the stack is closed after the
last collected test that uses `name` (after -k and the like), or at the session's end as usual.

Under pytest-xdist's `--dist loadgroup` (the suite's default, `-n 2`), each module is one group, so
its module-scoped servers start once, and the modules that use the heavy fixtures are one group
together, run first, so that one worker holds them while the other takes the rest. Without
xdist those modules run last instead, in RUN_LAST's order.
"""

from __future__ import annotations

import contextlib

import pytest

# The modules using these fixtures run at the end, in this order.
RUN_LAST = ("pytriton", "ray_cluster")

_held: dict[str, contextlib.ExitStack] = {}
_last_user: dict[str, str] = {}  # fixture name -> node id of the last test that uses it


def hold(name: str, stack: contextlib.ExitStack) -> None:
    """Close `stack` after the last test that uses fixture `name`."""
    _held[name] = stack


HEAVY_GROUP = "heavy-fixtures"


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _ranks(items: list[pytest.Item]) -> dict[str, int]:
    """Each module's rank: 0, or 1 + the index in RUN_LAST of the last heavy fixture it uses."""
    rank: dict[str, int] = {}
    for item in items:
        names = getattr(item, "fixturenames", ())
        r = max((k + 1 for k, name in enumerate(RUN_LAST) if name in names), default=0)
        rank[_module(item)] = max(rank.get(_module(item), 0), r)
    return rank


def _grouped(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("xdist") and config.getoption("dist", "no") == "loadgroup"


def mark_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under --dist loadgroup, give each test its xdist group (conftest calls this before xdist
    reads the groups)."""
    if not _grouped(config):
        return
    rank = _ranks(items)
    for item in items:
        group = HEAVY_GROUP if rank[_module(item)] else _module(item)
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = _ranks(items)
    if _grouped(config):  # the heavy group first, its modules in RUN_LAST's order
        items.sort(key=lambda item: (0, rank[_module(item)]) if rank[_module(item)] else (1, 0))
    else:
        items.sort(key=lambda item: rank[_module(item)])  # stable: modules keep their order
    for item in items:
        for name in RUN_LAST:
            if name in getattr(item, "fixturenames", ()):
                _last_user[name] = item.nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    yield
    for name, nodeid in _last_user.items():
        if nodeid == item.nodeid and name in _held:
            _held.pop(name).close()

"""pytest plugin: the session's heavy fixtures (a PyTriton server, a Ray cluster) are used by a few
modules, which run last, grouped, and each fixture is stopped right after its last test, so that it
neither idles beside the other tests (CPU that perturbs their measurements) nor is started twice.

A fixture opts in by handing its ExitStack to `hold(name, stack)`; the stack is closed after the
last collected test that uses `name` (after -k and the like), or at the session's end as usual.
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


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank: dict[str, int] = {}
    for item in items:
        names = getattr(item, "fixturenames", ())
        r = max((k + 1 for k, name in enumerate(RUN_LAST) if name in names), default=0)
        rank[_module(item)] = max(rank.get(_module(item), 0), r)
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

"""pytest settings for the whole project: the notebooks that `make test` runs through nbmake get a time limit
of their own (``--notebook-timeout``), apart from the unit tests' (pyproject.toml's ``timeout``)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--notebook-timeout", type=float, default=None, metavar="SECONDS",
                     help="pytest-timeout for each notebook run by nbmake, as a whole (default: the ini's timeout)")


def pytest_collection_modifyitems(config, items):
    timeout = config.getoption("--notebook-timeout")
    if timeout is None:
        return
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.timeout(timeout))

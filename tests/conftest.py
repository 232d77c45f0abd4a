import os
import sys

import pytest

@pytest.fixture(scope="session", autouse=True)
def _own_cache_home(tmp_path_factory):
    """The suite's specs are temporary files: their `checked` records (nestnet.checked) go to a
    cache of the run's own under pytest's temporary directory, not the user's ~/.cache
    (subprocesses inherit it)."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache-home"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


def pytest_collection_modifyitems(config, items):
    # Tests marked root need root and network namespaces; skip them (visibly) elsewhere.
    if os.geteuid() == 0 and sys.platform.startswith("linux"):
        return
    skip = pytest.mark.skip(reason="needs root on Linux (network namespaces)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)

import os
import sys

import pytest


def pytest_collection_modifyitems(config, items):
    # Tests marked root need root and network namespaces; skip them (visibly) elsewhere.
    if os.geteuid() == 0 and sys.platform.startswith("linux"):
        return
    skip = pytest.mark.skip(reason="needs root on Linux (network namespaces)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)

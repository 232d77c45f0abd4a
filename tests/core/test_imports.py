"""What reading a spec loads: the core (spec, plan, store) imports no cloud client, differ or
exporter, and no pretty-printer (issue 24: start-up is part of every command's time)."""

from __future__ import annotations

import subprocess
import sys


def test_loading_a_plan_imports_no_cloud_client():
    code = ("import sys, nestnet.plan, nestnet.store, nestnet.validate; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('nestnet.clouds.', 'azure', 'rich', 'ruamel')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    # a spec's cloud section is part of the spec: each cloud package's cheap __init__ and its spec
    # model load with it (issue 25), nothing else of a cloud
    assert out == ["nestnet.clouds.aws", "nestnet.clouds.aws.spec", "nestnet.clouds.azure", "nestnet.clouds.azure.spec"]


def test_the_package_still_offers_its_names_on_first_use():
    import nestnet.clouds.azure as azure
    from nestnet.clouds.azure.arm import ArmClient
    from nestnet.clouds.azure.export import terraform

    assert azure.ArmClient is ArmClient and azure.terraform is terraform
    assert set(azure.__all__) <= set(azure._FROM)

"""vm add / vm rm edit the spec line by line (issue 24: 1,000 hosts took 16 s in a YAML round trip):
exactly one line in or the item's lines out, every comment and other byte kept."""

from __future__ import annotations

from nestnet.plan import load_plan
from nestnet.specedit import vm_add, vm_rm

from .specs import fabric, write


def test_add_and_rm_change_only_their_lines(tmp_path):
    import yaml

    text = "# top comment\n" + yaml.safe_dump(fabric(3, 2), sort_keys=False)
    text = text.replace("- name: h1-v1\n", "# a comment inside vms\n- name: h1-v1\n")
    path = write(tmp_path, text)
    vm_add(path, "new1", "h2", "10.1.0.40")
    after = path.read_text()
    assert after.startswith(text.rstrip("\n")) and after[len(text):] == "- {name: new1, host: h2, ip: 10.1.0.40}\n"
    assert str(load_plan(path, write=False).vms["new1"].ip) == "10.1.0.40"
    vm_rm(path, "h1-v1")
    gone = path.read_text()
    assert "# a comment inside vms\n" in gone and "h1-v1" not in gone
    assert gone == after.replace("- name: h1-v1\n  host: h1\n", "")
    vm_rm(path, "new1")
    assert path.read_text() == text.replace("- name: h1-v1\n  host: h1\n", "")

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


def test_rm_of_a_name_that_starts_another_changes_only_its_lines(tmp_path):
    import yaml

    text = "# top\n" + yaml.safe_dump(fabric(2, 12), sort_keys=False)  # h1-v1 and h1-v10, h1-v11
    path = write(tmp_path, text)
    vm_rm(path, "h1-v1")
    assert path.read_text() == text.replace("- name: h1-v1\n  host: h1\n", "")


def test_move_changes_only_the_items_lines(tmp_path):
    import yaml

    from nestnet.specedit import move_vm

    text = "# top comment\n" + yaml.safe_dump(fabric(3, 2), sort_keys=False)
    text = text.replace("- name: h1-v1\n", "# a comment inside vms\n- name: h1-v1\n")
    text = text.replace("- name: h2-v0\n  host: h2\n", "- {name: h2-v0, host: h2}  # flow\n")
    path = write(tmp_path, text)
    ip = str(load_plan(path).vms["h1-v1"].ip)
    old, loaded = move_vm(path, "h1-v1", "h0")  # keeps its address: pinned
    assert old.host == "h1" and str(old.ip) == ip and loaded.plan.vms["h1-v1"].host == "h0"
    moved = text.replace("- name: h1-v1\n  host: h1\n", f"- name: h1-v1\n  host: h0\n  ip: {ip}\n")
    assert path.read_text() == moved
    move_vm(path, "h1-v1", "h2", renumber=True)  # the pin goes
    assert path.read_text() == text.replace("- name: h1-v1\n  host: h1\n", "- name: h1-v1\n  host: h2\n")
    ip = str(load_plan(path).vms["h2-v0"].ip)
    move_vm(path, "h2-v0", "h0")
    flow = f"- {{name: h2-v0, host: h0, ip: {ip}}}  # flow\n"
    assert path.read_text().count(flow) == 1
    move_vm(path, "h2-v0", "h1", renumber=True)
    assert path.read_text().count("- {name: h2-v0, host: h1}  # flow\n") == 1
    assert path.read_text().startswith("# top comment\n") and "# a comment inside vms\n" in path.read_text()


def test_move_of_an_unusual_item_takes_the_round_trip(tmp_path):
    import yaml

    from nestnet.specedit import _fast_move, move_vm

    text = yaml.safe_dump(fabric(2, 1), sort_keys=False).replace(
        "- name: h1-v0\n  host: h1\n", "- name: h1-v0\n  host: &h h1\n")  # an anchor: not a plain item
    assert _fast_move(text, "h1-v0", "h0", None) is None
    text = yaml.safe_dump(fabric(2, 1), sort_keys=False).replace("- name: h1-v0\n  host: h1\n",
                                                                 "- name: h1-v0\n  host:\n    h1\n")
    assert _fast_move(text, "h1-v0", "h0", None) is None  # a value on its own line
    path = write(tmp_path, text)
    move_vm(path, "h1-v0", "h0", renumber=True)
    assert load_plan(path).vms["h1-v0"].host == "h0"

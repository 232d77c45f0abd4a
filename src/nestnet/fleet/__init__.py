"""Apply the Plan to every host through Ansible (``nestnet fleet``).

    render.inventory(plan) -> dict    group nestnet_hosts: each host at its plan IP and SSH port
    render.playbook() -> list         copy spec + lock, install nestnet, ``nestnet host apply``
    apply(plan, spec_path, inventory=None, dry_run=False, extra_args=()) -> [HostResult]
                                      runs ansible-playbook; one result per host

The playbook is the seam: each host reconciles itself with ``nestnet host apply``, so what
changes, and the "second run changes nothing" guarantee, are the host reconciler's. Ansible only
delivers the files and collects the JSON each host prints (callback ``nestnet_json``, shipped in
``callback_plugins/``).
"""

from .render import GROUP, inventory, playbook
from .run import FleetError, apply, doctor, find_ansible_playbook
from .summary import HostResult, summarise

__all__ = ["GROUP", "FleetError", "HostResult", "apply", "doctor", "find_ansible_playbook", "inventory", "playbook", "summarise"]

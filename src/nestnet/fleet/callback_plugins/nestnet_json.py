"""Ansible stdout callback: one JSON document with every task result and the per-host stats.

ansible-core ships no JSON callback (``ansible.posix.json`` lives in a collection that may be
absent), so ``nestnet fleet apply`` points ``ANSIBLE_CALLBACK_PLUGINS`` here. Loaded by Ansible,
never imported by nestnet itself.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: nestnet_json
    type: stdout
    short_description: task results and stats as one JSON document, for nestnet fleet
    description: [Prints one JSON object when the playbook ends - events and stats.]
"""


def _parts(result: Any) -> tuple[str, str, dict[str, Any]]:
    # ansible-core >= 2.19 passes CallbackTaskResult (host, task, result); older ones TaskResult
    # (_host, _task, _result).
    host = getattr(result, "host", None) or result._host
    task = getattr(result, "task", None) or result._task
    data = getattr(result, "result", None)
    return host.get_name(), task.get_name(), data if isinstance(data, dict) else result._result


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "nestnet_json"

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def _record(self, result: Any, status: str) -> None:
        host, task, data = _parts(result)
        event: dict[str, Any] = {"host": host, "task": task, "status": status}
        for key in ("msg", "stdout", "rc"):
            if key in data:
                event[key] = data[key]
        self.events.append(event)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result, "changed" if _parts(result)[2].get("changed") else "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, "unreachable")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, "skipped")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        out = {"events": self.events, "stats": {h: stats.summarize(h) for h in sorted(stats.processed)}}
        sys.stdout.write(json.dumps(out, default=str) + "\n")
        sys.stdout.flush()

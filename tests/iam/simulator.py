"""Python side of the independent IAM evaluator (tests/iam/evaluate.mjs, @cloud-copilot/iam-simulate).

One Node process per test worker, started on first use, fed one JSON line per question. The evaluator
never sees moto: it judges the synthesized policies exactly as AWS would judge the request.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EVALUATOR = Path(__file__).with_name("evaluate.mjs")
PACKAGE = REPO / "node_modules" / "@cloud-copilot" / "iam-simulate"


class SimulatorUnavailable(RuntimeError):
    """Node or the pinned evaluator package is missing (run `make setup`)."""


@dataclass(frozen=True)
class Decision:
    """What the evaluator decided, and which statements decided it."""

    result: str  # Allowed | ExplicitlyDenied | ImplicitlyDenied | Error
    ignored_keys: tuple[str, ...] = ()
    denied_by: tuple[dict[str, Any], ...] = ()
    allowed_by: tuple[dict[str, Any], ...] = ()
    errors: Any = None
    resource_type: str | None = None

    @property
    def allowed(self) -> bool:
        return self.result == "Allowed"


@dataclass(frozen=True)
class ActionInfo:
    name: str
    exists: bool
    condition_keys: frozenset[str] = frozenset()
    resource_types: tuple[dict[str, Any], ...] = ()
    wildcard_only: bool = False

    def keys_for(self, resource_type: str | None) -> frozenset[str]:
        """Condition keys (lower case) valid for this action on that resource type."""
        keys = {k.lower() for k in self.condition_keys}
        for rt in self.resource_types:
            if resource_type is None or rt["name"] == resource_type:
                keys.update(k.lower() for k in rt["conditionKeys"])
        return frozenset(keys)


@dataclass
class _Process:
    proc: subprocess.Popen[str]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise SimulatorUnavailable("the IAM evaluator (node tests/iam/evaluate.mjs) stopped")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"IAM evaluator failed on {request}: {answer['error']}")
        return answer


@cache
def _process() -> _Process:
    node = shutil.which("node")
    if node is None:
        raise SimulatorUnavailable("node is not installed; the CDK needs it too (install Node.js 20+)")
    if not PACKAGE.is_dir():
        raise SimulatorUnavailable(f"{PACKAGE.relative_to(REPO)} is missing; run `make setup` (npm ci)")
    proc = subprocess.Popen(
        [node, str(EVALUATOR)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    atexit.register(proc.kill)
    return _Process(proc)


def simulate(simulation: dict[str, Any]) -> Decision:
    answer = _process().ask({"op": "simulate", "simulation": simulation})
    return Decision(
        result=answer["result"],
        ignored_keys=tuple(answer.get("ignored", [])),
        denied_by=tuple(answer.get("deniedBy", [])),
        allowed_by=tuple(answer.get("allowedBy", [])),
        errors=answer.get("errors"),
        resource_type=answer.get("resourceType"),
    )


@cache
def action_info(action: str) -> ActionInfo:
    answer = _process().ask({"op": "action", "action": action})
    if not answer["exists"]:
        return ActionInfo(action, exists=False)
    return ActionInfo(
        name=action,
        exists=True,
        condition_keys=frozenset(answer["conditionKeys"]),
        resource_types=tuple(answer["resourceTypes"]),
        wildcard_only=answer["wildcardOnly"],
    )


@cache
def global_keys() -> frozenset[str]:
    return frozenset(k.lower() for k in _process().ask({"op": "globalKeys"})["keys"])

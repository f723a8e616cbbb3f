"""A restore drill's record ``reports/drills/<stamp>.json`` as the drill writes it (DESIGN.md), for the
tests of its readers (the weekly mail, ``backupctl status``, ``backupctl drill status``)."""

from __future__ import annotations

from typing import Any

from lambdas.common.contracts import DRILL_PHASES


def drill_record(
    started: str = "2027-01-02T05:00:00Z", *, failed_phase: str = "", **changes: Any
) -> dict[str, Any]:
    """A passed drill that started at ``started`` (42.5 minutes against 240); ``failed_phase``: that
    phase failed (with a detail), so the drill failed and reached no RTO; ``changes``: other fields."""
    phases = [
        {
            "name": name,
            "started_at": started,
            "seconds": 60,
            "ok": name != failed_phase,
            "detail": "school answered '0' (expected a value other than 0)"
            if name == failed_phase
            else "fine",
        }
        for name in DRILL_PHASES
    ]
    failed = bool(failed_phase)
    return {
        "started_at": started,
        "finished_at": started,
        "result": "failed" if failed else "passed",
        "rto_minutes": None if failed else 42.5,
        "rto_target_minutes": 240,
        "rto_met": not failed,
        "phases": phases,
        "restored": {
            "ami": ["sb-i-0abc-20261227-0200"],
            "db_snapshot": ["sb-school-db-20270102-0230"],
            "dump": [],
        },
        "checks": [],
        "cost_estimate_usd": 0.05,
        "torn_down": True,
        "leftovers": [],
        **changes,
    }

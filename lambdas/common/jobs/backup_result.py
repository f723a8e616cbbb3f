"""The result of a backup job (rds_snapshot, ami_backup): what was created, what already existed,
what failed and why; turned into an error when anything failed (after the handler published it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lambdas.common.aws.quota import SnapshotQuota
from lambdas.common.observability import logger


class BackupJobFailed(RuntimeError):
    """At least one source could not be backed up; raised after all sources were tried."""


@dataclass
class BackupResult:
    """Names of the backups created / found, and failed sources with the reason."""

    job: str
    created: list[str] = field(default_factory=list)
    already_existed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    quota: SnapshotQuota | None = None  # rds_snapshot: the manual-snapshot quota as read before the run

    def add_created(self, name: str, **details: Any) -> None:
        self.created.append(name)
        logger.info("backup created", extra={"job": self.job, "backup": name, **details})

    def add_already_existed(self, name: str, **details: Any) -> None:
        self.already_existed.append(name)
        logger.info("backup already existed", extra={"job": self.job, "backup": name, **details})

    def add_failed(self, source: str, reason: str) -> None:
        # One reason per source: the first is the most specific one.
        self.failed.setdefault(source, reason)
        logger.error("backup failed", extra={"job": self.job, "source": source, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "created": list(self.created),
            "already_existed": list(self.already_existed),
            "failed": dict(self.failed),
            **({"rds_quota": self.quota.as_dict()} if self.quota else {}),
        }

    def raise_if_failed(self) -> None:
        if not self.failed:
            return
        tried = len(self.created) + len(self.already_existed) + len(self.failed)
        reasons = "; ".join(f"{source}: {reason}" for source, reason in sorted(self.failed.items()))
        raise BackupJobFailed(f"{self.job}: {len(self.failed)} of {tried} sources failed: {reasons}")

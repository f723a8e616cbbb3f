"""The retention policy (DESIGN.md, "Retention policy"): which backups to keep and which to delete.

Pure: no AWS, no clock. Prune applies it to AMIs and RDS snapshots; verify and report can use it to
explain what the next prune will do.

Semantics (those of ``restic forget``), applied separately to every (source, kind) group:

1. ``keep_daily=N`` keeps the newest backup of each of the last N distinct UTC days that have a
   backup (days without a backup do not count); ``keep_weekly`` the same per ISO week (``2026-W48``),
   ``keep_monthly`` per calendar month. A backup is kept when any rule keeps it.
2. Then every backup older than ``max_age_days`` (``now - created > max_age_days``) goes, kept or not.
3. Above both stands ``min_keep``: the newest ``min_keep`` *usable* backups of the group are never
   deleted, whatever their age, so a source whose backups stopped or started failing keeps its last
   good ones.
4. Pending backups are never deleted (deleting one that is still being written is never right, and it
   may yet become the newest good backup).

Which backups count. Only usable backups are restore points, so only they fill the
daily/weekly/monthly buckets and the ``min_keep`` count. If failed ones counted, a failed backup could
be "the newest of its day" and push the good backup of that day out of the daily rule, and a run of
failures would use up ``keep_daily`` with backups nobody can restore. Pending ones do not count
either: they are not restore points yet (they are kept anyway, rule 4).

Failed (any state that is neither available nor pending) backups are never restore points, but the
newest one tells the admin what went wrong, and the verify/report jobs can show it. So a failed
backup is kept as evidence only while it is the newest failed backup of its group *and* no usable
backup newer than it exists, and never beyond ``max_age_days``. Every other failed backup is deleted:
it protects nothing and still costs storage and (for RDS) a slot of the manual-snapshot quota, which
a streak of failures must not fill up.

Deterministic: the result does not depend on input order; backups with the same creation time are
ordered by id (the greater id counts as the newer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from lambdas.common.contracts import State

KEEP: Final = "keep"
DELETE: Final = "delete"


@dataclass(frozen=True)
class Backup:
    """One backup as the policy sees it. ``created`` is an aware time; only a pending backup may lack it."""

    id: str
    source: str
    kind: str
    created: datetime | None
    state: State

    def __post_init__(self) -> None:
        if self.created is None:
            if self.state is not State.PENDING:
                raise ValueError(f"backup {self.id}: only a pending backup may lack its creation time")
        elif self.created.tzinfo is None or self.created.utcoffset() is None:
            raise ValueError(f"backup {self.id}: creation time {self.created!r} has no timezone")


@dataclass(frozen=True)
class RetentionPolicy:
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    max_age_days: int
    min_keep: int

    def __post_init__(self) -> None:
        for name in ("keep_daily", "keep_weekly", "keep_monthly", "max_age_days", "min_keep"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"retention {name}={value!r} must be a whole number >= 0")


@dataclass(frozen=True)
class Decision:
    backup: Backup
    keep: bool
    reasons: tuple[str, ...]

    @property
    def action(self) -> str:
        return KEEP if self.keep else DELETE

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC)


def day_bucket(when: datetime) -> str:
    return f"{_utc(when):%Y-%m-%d}"


def week_bucket(when: datetime) -> str:
    year, week, _ = _utc(when).isocalendar()
    return f"{year:04d}-W{week:02d}"


def month_bucket(when: datetime) -> str:
    return f"{_utc(when):%Y-%m}"


_RULES: Final[tuple[tuple[str, str, Callable[[datetime], str]], ...]] = (
    ("keep_daily", "daily", day_bucket),
    ("keep_weekly", "weekly", week_bucket),
    ("keep_monthly", "monthly", month_bucket),
)


def _created(backup: Backup) -> datetime:
    if backup.created is None:  # only pending backups lack it, and they never get here
        raise ValueError(f"backup {backup.id} has no creation time")
    return backup.created


def _newest_first(backups: Iterable[Backup]) -> list[Backup]:
    return sorted(backups, key=lambda b: (_created(b), b.id), reverse=True)


def _rule_reasons(usable: Sequence[Backup], policy: RetentionPolicy) -> dict[str, list[str]]:
    """For each usable backup (newest first), the daily/weekly/monthly rules that keep it."""
    reasons: dict[str, list[str]] = {b.id: [] for b in usable}
    for attr, label, bucket_of in _RULES:
        remaining: int = getattr(policy, attr)
        last_bucket: str | None = None
        for backup in usable:
            if remaining <= 0:
                break
            bucket = bucket_of(_created(backup))
            if bucket != last_bucket:
                reasons[backup.id].append(f"{label} {bucket}")
                last_bucket = bucket
                remaining -= 1
    return reasons


def _decide_usable(usable: Sequence[Backup], policy: RetentionPolicy, cutoff: datetime) -> list[Decision]:
    reasons = _rule_reasons(usable, policy)
    decisions: list[Decision] = []
    for index, backup in enumerate(usable):
        too_old = _created(backup) < cutoff
        if index < policy.min_keep:
            rules = () if too_old else tuple(reasons[backup.id])
            decisions.append(Decision(backup, True, (*rules, f"min_keep (newest {policy.min_keep} usable)")))
        elif too_old:
            decisions.append(Decision(backup, False, (f"older than {policy.max_age_days} days",)))
        elif reasons[backup.id]:
            decisions.append(Decision(backup, True, tuple(reasons[backup.id])))
        else:
            decisions.append(Decision(backup, False, ("not kept by any rule",)))
    return decisions


def _decide_failed(
    failed: Sequence[Backup], newest_usable: Backup | None, policy: RetentionPolicy, cutoff: datetime
) -> list[Decision]:
    decisions: list[Decision] = []
    for index, backup in enumerate(failed):
        if _created(backup) < cutoff:
            why = f"failed, older than {policy.max_age_days} days"
        elif index > 0:
            why = "failed, a newer failed backup exists"
        elif newest_usable is not None and (_created(newest_usable), newest_usable.id) > (
            _created(backup),
            backup.id,
        ):
            why = "failed, a newer usable backup exists"
        else:
            decisions.append(Decision(backup, True, ("failed: newest failure kept as evidence",)))
            continue
        decisions.append(Decision(backup, False, (why,)))
    return decisions


def _decide_group(group: Sequence[Backup], policy: RetentionPolicy, now: datetime) -> list[Decision]:
    usable = _newest_first(b for b in group if b.state is State.USABLE)
    failed = _newest_first(b for b in group if b.state is State.FAILED)
    cutoff = now - timedelta(days=policy.max_age_days)
    return [
        *_decide_usable(usable, policy, cutoff),
        *_decide_failed(failed, usable[0] if usable else None, policy, cutoff),
        *(Decision(b, True, ("pending: never deleted",)) for b in group if b.state is State.PENDING),
    ]


def apply_policy(backups: Iterable[Backup], policy: RetentionPolicy, now: datetime) -> list[Decision]:
    """A decision for every backup, grouped by (kind, source) and newest first within a group.

    Raises ValueError for duplicate ids (per kind) or a naive ``now``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now={now!r} has no timezone")
    groups: dict[tuple[str, str], list[Backup]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for backup in backups:
        if (backup.kind, backup.id) in seen:
            raise ValueError(f"backup {backup.kind} {backup.id} appears twice")
        seen.add((backup.kind, backup.id))
        groups[(backup.kind, backup.source)].append(backup)

    result: list[Decision] = []
    for key in sorted(groups):
        decisions = _decide_group(groups[key], policy, now)
        decisions.sort(key=_order_key, reverse=True)
        result.extend(decisions)
    return result


def _order_key(decision: Decision) -> tuple[bool, datetime, str]:
    # Sorted in reverse: pending ones without a time first, then newest first, ties by id.
    created = decision.backup.created
    return (created is None, _EPOCH if created is None else created, decision.backup.id)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

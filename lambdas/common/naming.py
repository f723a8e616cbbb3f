"""Names, tags and times that other parts of the system rely on (see DESIGN.md, Contracts)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

MANAGED_BY_KEY: Final = "ManagedBy"
MANAGED_BY_VALUE: Final = "schoolbackup"
JOB_KEY: Final = "BackupJob"
SOURCE_KEY: Final = "BackupSource"

JOB_RDS: Final = "rds-daily"
JOB_AMI: Final = "ami-weekly"
JOB_DUMP: Final = "dump-daily"
JOB_DRILL: Final = "drill"

NAME_PREFIX: Final = "sb-"
DUMP_PREFIX: Final = "dumps"

_NAME_RE = re.compile(r"^sb-(?P<source>.+)-(?P<date>\d{8})-(?P<time>\d{4})$")


class EventError(ValueError):
    """The invoking event is malformed."""


def backup_tags(job: str, source: str) -> dict[str, str]:
    """The tags every artifact carries."""
    return {MANAGED_BY_KEY: MANAGED_BY_VALUE, JOB_KEY: job, SOURCE_KEY: source}


def aws_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def is_managed(tags: Mapping[str, str]) -> bool:
    return tags.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE


def backup_name(source: str, when: datetime) -> str:
    """``sb-<source>-<YYYYMMDD>-<HHMM>`` in UTC."""
    return f"{NAME_PREFIX}{source}-{when.astimezone(UTC):%Y%m%d-%H%M}"


def parse_backup_name(name: str) -> tuple[str, datetime] | None:
    """(source, time) from a name made by :func:`backup_name`, or None for foreign names."""
    match = _NAME_RE.match(name)
    if not match:
        return None
    when = datetime.strptime(match["date"] + match["time"], "%Y%m%d%H%M").replace(tzinfo=UTC)
    return match["source"], when


def dump_folder(source: str, when: datetime, prefix: str = DUMP_PREFIX) -> str:
    """``dumps/<source>/<YYYY>/<MM>/<DD>/<YYYYMMDDTHHMMZ>/``."""
    t = when.astimezone(UTC)
    return f"{prefix}/{source}/{t:%Y/%m/%d}/{t:%Y%m%dT%H%MZ}/"


def parse_time(raw: str) -> datetime:
    """An ISO-8601 time (``Z`` or offset) as an aware UTC datetime."""
    text = raw.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"time {raw!r} has no timezone")
    return parsed.astimezone(UTC)


def scheduled_time(event: Mapping[str, Any] | None, now: datetime | None = None) -> datetime:
    """The event's ``scheduled_time`` (set by EventBridge Scheduler), else the current time.

    Names derive from this time, so a retried or doubled invocation creates nothing twice.
    """
    raw = (event or {}).get("scheduled_time")
    if raw in (None, ""):
        return (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    if not isinstance(raw, str):
        raise EventError(f"event field scheduled_time must be an ISO-8601 string, got {raw!r}")
    try:
        return parse_time(raw).replace(second=0, microsecond=0)
    except ValueError:
        raise EventError(
            f"event field scheduled_time={raw!r} is not an ISO-8601 time like 2026-11-27T02:30:00Z"
        ) from None

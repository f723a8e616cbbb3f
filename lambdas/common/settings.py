"""Reading a Lambda's settings from its environment.

Every setting is required unless a caller passes a default on purpose; a missing or malformed
variable raises :class:`SettingsError` whose message names the variable and what is allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.common.retention import RetentionPolicy

_TAG_PART = re.compile(r"^[\w .:/=+\-@]{1,128}$")


class SettingsError(ValueError):
    """A Lambda environment variable is missing or malformed."""


def env_str(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The non-empty value of ``name``; raises SettingsError naming the variable otherwise."""
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is missing or empty")
    return value


def env_int(
    name: str, minimum: int, environ: Mapping[str, str] | None = None, *, default: int | None = None
) -> int:
    """An integer >= ``minimum`` from ``name``; ``default`` (when given) if the variable is absent or empty."""
    env = os.environ if environ is None else environ
    if default is not None and not env.get(name, "").strip():
        return default
    raw = env_str(name, environ)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"environment variable {name}={value} must be at least {minimum}")
    return value


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    """A boolean (true/false/1/0/yes/no); ``default`` when the variable is absent."""
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise SettingsError(f"environment variable {name}={raw!r} must be true or false")


def env_list(name: str, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """A comma-separated list; an absent or empty variable is an empty tuple."""
    env = os.environ if environ is None else environ
    raw = env.get(name, "")
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class SelectionTag:
    """The tag that selects EC2 and RDS instances for backup, e.g. ``Backup=true``."""

    key: str
    value: str

    @classmethod
    def parse(cls, raw: str, name: str = "SELECTION_TAG") -> SelectionTag:
        key, sep, value = raw.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value or not _TAG_PART.match(key) or not _TAG_PART.match(value):
            raise SettingsError(
                f"environment variable {name}={raw!r} must look like Key=Value, e.g. Backup=true"
            )
        return cls(key, value)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SelectionTag:
        return cls.parse(env_str("SELECTION_TAG", environ))

    def matches(self, tags: Mapping[str, str]) -> bool:
        return tags.get(self.key) == self.value

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


def tag_dict(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """AWS ``[{"Key": k, "Value": v}]`` lists as a plain dict (also the boto3 stubs' TagTypeDef lists)."""
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags or []}


def retention_from_env(environ: Mapping[str, str] | None = None) -> RetentionPolicy:
    """KEEP_DAILY, KEEP_WEEKLY, KEEP_MONTHLY, MAX_AGE_DAYS and MIN_KEEP, validated as infra/config.py does."""
    policy = RetentionPolicy(
        keep_daily=env_int("KEEP_DAILY", 0, environ),
        keep_weekly=env_int("KEEP_WEEKLY", 0, environ),
        keep_monthly=env_int("KEEP_MONTHLY", 0, environ),
        max_age_days=env_int("MAX_AGE_DAYS", 1, environ),
        min_keep=env_int("MIN_KEEP", 1, environ),
    )
    if policy.keep_daily + policy.keep_weekly + policy.keep_monthly == 0:
        raise SettingsError(
            "environment variables KEEP_DAILY, KEEP_WEEKLY and KEEP_MONTHLY are all 0; at least one must be above 0"
        )
    return policy

"""Every job's settings, as frozen dataclasses: ``from_env()`` in the Lambda, ``to_env()`` in the stack.

An environment variable's name is written once, here: the stack builds each function's environment
with ``to_env()``, the handler reads it back with ``from_env()``, and a test proves
``from_env(to_env(s)) == s`` for every job. A missing or malformed variable raises
:class:`SettingsError` whose message names the variable and what is allowed. Standard library only
(infra and backupctl import this module); the only module of lambdas.common that reads ``os.environ``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lambdas.common.contracts import (
    AWS_REGION,
    EC2_INSTANCE_ID,
    KIND_AMI,
    KIND_DUMP,
    KIND_RDS,
    KINDS,
    NAMESPACE,
    OFFSITE_KEY_ALIAS,
    RDS_INSTANCE_ID,
    STAGING_KEY_ALIAS,
    TAG_PART,
)
from lambdas.common.retention import RetentionPolicy

Env = Mapping[str, str]

# How old the newest good backup of each kind may be (also the configuration's defaults): a daily job
# may run a couple of hours late once, a weekly one a day.
DEFAULT_DUMP_MAX_AGE_HOURS: Final = 26
DEFAULT_RDS_MAX_AGE_HOURS: Final = 26
DEFAULT_AMI_MAX_AGE_HOURS: Final = 192
RESTORE_TEST_PICKS: Final = ("newest", "random")
LANGUAGES: Final = ("en", "de")


class SettingsError(ValueError):
    """A Lambda environment variable is missing or malformed."""


def _env(environ: Env | None) -> Env:
    return os.environ if environ is None else environ


def env_str(name: str, environ: Env | None = None) -> str:
    """The non-empty value of ``name``; raises SettingsError naming the variable otherwise."""
    value = _env(environ).get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is missing or empty")
    return value


def env_int(name: str, minimum: int, environ: Env | None = None, *, default: int | None = None) -> int:
    """An integer >= ``minimum`` from ``name``; ``default`` (when given) if the variable is absent or empty."""
    if default is not None and not _env(environ).get(name, "").strip():
        return default
    raw = env_str(name, environ)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"environment variable {name}={value} must be at least {minimum}")
    return value


def env_bool(name: str, default: bool, environ: Env | None = None) -> bool:
    """A boolean (true/false/1/0/yes/no); ``default`` when the variable is absent."""
    raw = _env(environ).get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise SettingsError(f"environment variable {name}={raw!r} must be true or false")


def env_list(name: str, environ: Env | None = None) -> tuple[str, ...]:
    """A comma-separated list; an absent or empty variable is an empty tuple."""
    raw = _env(environ).get(name, "")
    return tuple(part.strip() for part in raw.split(",") if part.strip())


DEFAULT_TIMEZONE: Final = "Europe/Zurich"


def env_timezone(name: str = "TIMEZONE", environ: Env | None = None) -> str:
    """An IANA timezone name (the times shown to the admin); default Europe/Zurich."""
    raw = _env(environ).get(name, "").strip() or DEFAULT_TIMEZONE
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"environment variable {name}={raw!r} is not an IANA timezone like Europe/Zurich"
        ) from None
    return raw


def env_choice(name: str, default: str, choices: tuple[str, ...], environ: Env | None = None) -> str:
    value = _env(environ).get(name, "").strip() or default
    if value not in choices:
        raise SettingsError(f"environment variable {name}={value!r} must be {' or '.join(choices)}")
    return value


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _ids(name: str, pattern_name: str, environ: Env | None) -> tuple[str, ...]:
    ids = env_list(name, environ)
    pattern, example = (
        (EC2_INSTANCE_ID, "ids like i-0123456789abcdef0")
        if pattern_name == "ec2"
        else (RDS_INSTANCE_ID, "identifiers like school-db")
    )
    bad = [i for i in ids if not pattern.match(i)]
    if bad:
        what = "instance ids" if pattern_name == "ec2" else "DB identifiers"
        raise SettingsError(
            f"environment variable {name} has invalid {what} {bad}; expected comma-separated {example}"
        )
    return ids


@dataclass(frozen=True)
class SelectionTag:
    """The tag that selects EC2 and RDS instances for backup, e.g. ``Backup=true``."""

    key: str
    value: str

    @classmethod
    def parse(cls, raw: str, name: str = "SELECTION_TAG") -> SelectionTag:
        key, sep, value = raw.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value or not TAG_PART.match(key) or not TAG_PART.match(value):
            raise SettingsError(
                f"environment variable {name}={raw!r} must look like Key=Value, e.g. Backup=true"
            )
        return cls(key, value)

    @classmethod
    def from_env(cls, environ: Env | None = None) -> SelectionTag:
        return cls.parse(env_str("SELECTION_TAG", environ))

    def to_env(self) -> dict[str, str]:
        return {"SELECTION_TAG": str(self)}

    def matches(self, tags: Mapping[str, str]) -> bool:
        return tags.get(self.key) == self.value

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


@dataclass(frozen=True)
class Selection:
    """What is backed up: instances with the selection tag, plus these listed ids."""

    tag: SelectionTag
    ec2_instance_ids: tuple[str, ...] = ()
    rds_instance_ids: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Env | None = None) -> Selection:
        return cls(
            tag=SelectionTag.from_env(environ),
            ec2_instance_ids=_ids("EC2_INSTANCE_IDS", "ec2", environ),
            rds_instance_ids=_ids("RDS_INSTANCE_IDS", "rds", environ),
        )

    def to_env(self) -> dict[str, str]:
        return {
            **self.tag.to_env(),
            "EC2_INSTANCE_IDS": ",".join(self.ec2_instance_ids),
            "RDS_INSTANCE_IDS": ",".join(self.rds_instance_ids),
        }


def retention_from_env(environ: Env | None = None, prefix: str = "") -> RetentionPolicy:
    """KEEP_DAILY, KEEP_WEEKLY, KEEP_MONTHLY, MAX_AGE_DAYS and MIN_KEEP (each after ``prefix``, e.g.
    OFFSITE_KEEP_DAILY), validated as the configuration is."""
    policy = RetentionPolicy(
        keep_daily=env_int(f"{prefix}KEEP_DAILY", 0, environ),
        keep_weekly=env_int(f"{prefix}KEEP_WEEKLY", 0, environ),
        keep_monthly=env_int(f"{prefix}KEEP_MONTHLY", 0, environ),
        max_age_days=env_int(f"{prefix}MAX_AGE_DAYS", 1, environ),
        min_keep=env_int(f"{prefix}MIN_KEEP", 1, environ),
    )
    if policy.keep_daily + policy.keep_weekly + policy.keep_monthly == 0:
        raise SettingsError(
            f"environment variables {prefix}KEEP_DAILY, {prefix}KEEP_WEEKLY and {prefix}KEEP_MONTHLY are all 0; "
            "at least one must be above 0"
        )
    return policy


def retention_to_env(policy: RetentionPolicy, prefix: str = "") -> dict[str, str]:
    return {
        f"{prefix}KEEP_DAILY": str(policy.keep_daily),
        f"{prefix}KEEP_WEEKLY": str(policy.keep_weekly),
        f"{prefix}KEEP_MONTHLY": str(policy.keep_monthly),
        f"{prefix}MAX_AGE_DAYS": str(policy.max_age_days),
        f"{prefix}MIN_KEEP": str(policy.min_keep),
    }


@dataclass(frozen=True)
class Targets:
    """How old the newest good backup of each kind may be before an alarm fires (hours)."""

    dump_max_age_hours: int = DEFAULT_DUMP_MAX_AGE_HOURS
    rds_max_age_hours: int = DEFAULT_RDS_MAX_AGE_HOURS
    ami_max_age_hours: int = DEFAULT_AMI_MAX_AGE_HOURS

    @classmethod
    def from_env(
        cls, environ: Env | None = None, prefix: str = "", defaults: Targets | None = None
    ) -> Targets:
        base = defaults or cls()
        return cls(
            dump_max_age_hours=env_int(
                f"{prefix}DUMP_MAX_AGE_HOURS", 1, environ, default=base.dump_max_age_hours
            ),
            rds_max_age_hours=env_int(
                f"{prefix}RDS_MAX_AGE_HOURS", 1, environ, default=base.rds_max_age_hours
            ),
            ami_max_age_hours=env_int(
                f"{prefix}AMI_MAX_AGE_HOURS", 1, environ, default=base.ami_max_age_hours
            ),
        )

    def by_kind(self) -> dict[str, int]:
        """The target of each backup kind (``dump``, ``rds``, ``ami``), in hours."""
        return {
            KIND_DUMP: self.dump_max_age_hours,
            KIND_RDS: self.rds_max_age_hours,
            KIND_AMI: self.ami_max_age_hours,
        }

    def to_env(self, prefix: str = "") -> dict[str, str]:
        return {
            f"{prefix}DUMP_MAX_AGE_HOURS": str(self.dump_max_age_hours),
            f"{prefix}RDS_MAX_AGE_HOURS": str(self.rds_max_age_hours),
            f"{prefix}AMI_MAX_AGE_HOURS": str(self.ami_max_age_hours),
        }


# The offsite copies' age targets (defaults): a dump replicates within minutes; the daily RDS copy and
# the weekly AMI copy start after their snapshot is usable and take a while, so a check may still see
# the previous one as the newest usable copy.
OFFSITE_TARGETS: Final = Targets(dump_max_age_hours=27, rds_max_age_hours=50, ami_max_age_hours=216)
# The retention in the offsite region (defaults): shorter than at home; the copies are for a disaster.
OFFSITE_POLICY: Final = RetentionPolicy(
    keep_daily=7, keep_weekly=4, keep_monthly=1, max_age_days=35, min_keep=2
)
# Into another account an RDS snapshot or AMI copy arrives a run (a day) later: the run after the one
# that made its staging copy copies it (lambdas/common/jobs/offsite_copy.py).
CROSS_ACCOUNT_TARGETS: Final = Targets(dump_max_age_hours=27, rds_max_age_hours=74, ami_max_age_hours=240)
FREQUENCIES: Final = ("daily", "weekly")
OFFSITE_PREFIX: Final = "OFFSITE_"


@dataclass(frozen=True)
class Offsite:
    """Where the offsite copies are (another region of the same account) and the rules there.

    ``kinds``: what is copied (``dump`` by S3 replication, ``rds`` and ``ami`` by the copy job);
    ``rds_frequency``/``ami_frequency``: the newest usable backup is copied every day, or only when the
    newest copy is about a week old. ``policy`` is prune's retention in the offsite region, ``targets``
    verify's age targets there.
    """

    region: str
    bucket: str
    kinds: tuple[str, ...] = KINDS
    rds_frequency: str = "daily"
    ami_frequency: str = "weekly"
    policy: RetentionPolicy = OFFSITE_POLICY
    targets: Targets = OFFSITE_TARGETS
    key_alias: str = OFFSITE_KEY_ALIAS
    # Copies into another account: its id, and the role there that this function assumes (per function:
    # <prefix>-copy, -prune or -read); the staging key's alias in the home account's offsite region.
    account: str | None = None
    role_arn: str | None = None
    staging_key_alias: str = STAGING_KEY_ALIAS

    @property
    def cross_account(self) -> bool:
        return self.account is not None

    def copies(self, kind: str) -> bool:
        return kind in self.kinds

    def frequency(self, kind: str) -> str:
        """How often the copy job copies ``kind`` (``rds`` or ``ami``)."""
        return self.rds_frequency if kind == KIND_RDS else self.ami_frequency

    @classmethod
    def from_env(cls, environ: Env | None = None) -> Offsite | None:
        """None when OFFSITE_REGION is absent or empty (no offsite copies)."""
        region = _env(environ).get(f"{OFFSITE_PREFIX}REGION", "").strip()
        if not region:
            return None
        if not AWS_REGION.match(region):
            raise SettingsError(
                f"environment variable {OFFSITE_PREFIX}REGION={region!r} is not an AWS region like eu-central-1"
            )
        kinds = env_list(f"{OFFSITE_PREFIX}KINDS", environ)
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds:
            raise SettingsError(
                f"environment variable {OFFSITE_PREFIX}KINDS={','.join(kinds)!r} must be a comma-separated "
                f"list of {', '.join(KINDS)}"
            )
        return cls(
            region=region,
            bucket=env_str(f"{OFFSITE_PREFIX}BUCKET", environ),
            kinds=kinds,
            rds_frequency=env_choice(f"{OFFSITE_PREFIX}RDS_FREQUENCY", "daily", FREQUENCIES, environ),
            ami_frequency=env_choice(f"{OFFSITE_PREFIX}AMI_FREQUENCY", "weekly", FREQUENCIES, environ),
            policy=retention_from_env(environ, OFFSITE_PREFIX),
            targets=Targets.from_env(environ, OFFSITE_PREFIX, OFFSITE_TARGETS),
            key_alias=env_str(f"{OFFSITE_PREFIX}KEY_ALIAS", environ),
            **_offsite_account_from_env(environ),
        )

    def to_env(self) -> dict[str, str]:
        return {
            f"{OFFSITE_PREFIX}REGION": self.region,
            f"{OFFSITE_PREFIX}BUCKET": self.bucket,
            f"{OFFSITE_PREFIX}KINDS": ",".join(self.kinds),
            f"{OFFSITE_PREFIX}RDS_FREQUENCY": self.rds_frequency,
            f"{OFFSITE_PREFIX}AMI_FREQUENCY": self.ami_frequency,
            **retention_to_env(self.policy, OFFSITE_PREFIX),
            **self.targets.to_env(OFFSITE_PREFIX),
            f"{OFFSITE_PREFIX}KEY_ALIAS": self.key_alias,
            **(
                {
                    f"{OFFSITE_PREFIX}ACCOUNT": self.account,
                    f"{OFFSITE_PREFIX}ROLE_ARN": self.role_arn or "",
                    f"{OFFSITE_PREFIX}STAGING_KEY_ALIAS": self.staging_key_alias,
                }
                if self.account is not None
                else {}
            ),
        }


def _offsite_account_from_env(environ: Env | None) -> dict[str, Any]:
    """OFFSITE_ACCOUNT (absent or empty: this account), OFFSITE_ROLE_ARN (required with it: the role
    there), OFFSITE_STAGING_KEY_ALIAS."""
    env = _env(environ)
    account = env.get(f"{OFFSITE_PREFIX}ACCOUNT", "").strip()
    if not account:
        return {}
    if not re.fullmatch(r"\d{12}", account):
        raise SettingsError(
            f"environment variable {OFFSITE_PREFIX}ACCOUNT={account!r} is not a 12-digit AWS account id"
        )
    role_arn = env.get(f"{OFFSITE_PREFIX}ROLE_ARN", "").strip()
    if not re.fullmatch(rf"arn:aws[a-z-]*:iam::{account}:role/[\w+=,.@-]{{1,64}}", role_arn):
        raise SettingsError(
            f"environment variable {OFFSITE_PREFIX}ROLE_ARN={role_arn!r} is not the ARN of a role in the "
            f"target account {account} (arn:aws:iam::{account}:role/<name>)"
        )
    return {
        "account": account,
        "role_arn": role_arn,
        "staging_key_alias": env_str(f"{OFFSITE_PREFIX}STAGING_KEY_ALIAS", environ),
    }


def offsite_to_env(offsite: Offsite | None) -> dict[str, str]:
    """The offsite variables, or an empty OFFSITE_REGION (no offsite copies)."""
    return offsite.to_env() if offsite else {f"{OFFSITE_PREFIX}REGION": ""}


@dataclass(frozen=True)
class FunctionSettings:
    """What every function is told about itself: its name (labels its logs) and whether tracing is on."""

    name: str = "local"
    tracing: bool = False

    @classmethod
    def from_env(cls, environ: Env | None = None) -> FunctionSettings:
        env = _env(environ)
        name = env.get("SCHOOLBACKUP_FUNCTION", "").strip() or "local"
        tracing = env.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower() in ("false", "0")
        return cls(name=name, tracing=tracing)

    def to_env(self) -> dict[str, str]:
        # Not POWERTOOLS_SERVICE_NAME: Powertools would add it as a `service` dimension to every metric,
        # and the alarms watch metrics by exactly the dimensions the code sets.
        return {
            "SCHOOLBACKUP_FUNCTION": self.name,
            "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_TRACE_DISABLED": _flag(not self.tracing),
        }


@dataclass(frozen=True)
class RdsSnapshotSettings:
    selection: SelectionTag
    instance_ids: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Env | None = None) -> RdsSnapshotSettings:
        return cls(SelectionTag.from_env(environ), _ids("RDS_INSTANCE_IDS", "rds", environ))

    def to_env(self) -> dict[str, str]:
        return {**self.selection.to_env(), "RDS_INSTANCE_IDS": ",".join(self.instance_ids)}


@dataclass(frozen=True)
class AmiBackupSettings:
    selection: SelectionTag
    instance_ids: tuple[str, ...] = ()
    no_reboot: bool = True

    @classmethod
    def from_env(cls, environ: Env | None = None) -> AmiBackupSettings:
        return cls(
            selection=SelectionTag.from_env(environ),
            instance_ids=_ids("EC2_INSTANCE_IDS", "ec2", environ),
            no_reboot=env_bool("NO_REBOOT", True, environ),
        )

    def to_env(self) -> dict[str, str]:
        return {
            **self.selection.to_env(),
            "EC2_INSTANCE_IDS": ",".join(self.instance_ids),
            "NO_REBOOT": _flag(self.no_reboot),
        }


@dataclass(frozen=True)
class PruneSettings:
    policy: RetentionPolicy
    dry_run: bool = False
    offsite: Offsite | None = None  # prune there too, by offsite.policy

    @classmethod
    def from_env(cls, environ: Env | None = None) -> PruneSettings:
        return cls(
            policy=retention_from_env(environ),
            dry_run=env_bool("DRY_RUN", False, environ),
            offsite=Offsite.from_env(environ),
        )

    def to_env(self) -> dict[str, str]:
        return {
            **retention_to_env(self.policy),
            "DRY_RUN": _flag(self.dry_run),
            **offsite_to_env(self.offsite),
        }


@dataclass(frozen=True)
class VerifySettings:
    bucket: str
    selection: Selection
    retention: RetentionPolicy  # verify checks that prune removed what the policy no longer keeps
    dump_enabled: bool = True
    targets: Targets = field(default_factory=Targets)
    timezone: str = DEFAULT_TIMEZONE  # the times in verify's sentences and the weekly mail
    language: str = "en"  # of verify's sentences (the same LANGUAGE as the weekly mail)
    offsite: Offsite | None = None  # check the newest offsite copy of each kind too

    @classmethod
    def from_env(cls, environ: Env | None = None) -> VerifySettings:
        return cls(
            bucket=env_str("BACKUP_BUCKET", environ),
            selection=Selection.from_env(environ),
            retention=retention_from_env(environ),
            dump_enabled=env_bool("DUMP_ENABLED", True, environ),
            targets=Targets.from_env(environ),
            timezone=env_timezone("TIMEZONE", environ),
            language=env_choice("LANGUAGE", "en", LANGUAGES, environ),
            offsite=Offsite.from_env(environ),
        )

    def to_env(self) -> dict[str, str]:
        return {
            "BACKUP_BUCKET": self.bucket,
            **self.selection.to_env(),
            **retention_to_env(self.retention),
            "DUMP_ENABLED": _flag(self.dump_enabled),
            **self.targets.to_env(),
            "TIMEZONE": self.timezone,
            "LANGUAGE": self.language,
            **offsite_to_env(self.offsite),
        }


@dataclass(frozen=True)
class RestoreTestSettings:
    bucket: str
    pick: str = "newest"  # newest | random

    @classmethod
    def from_env(cls, environ: Env | None = None) -> RestoreTestSettings:
        return cls(
            bucket=env_str("BACKUP_BUCKET", environ),
            pick=env_choice("RESTORE_TEST_PICK", "newest", RESTORE_TEST_PICKS, environ),
        )

    def to_env(self) -> dict[str, str]:
        return {"BACKUP_BUCKET": self.bucket, "RESTORE_TEST_PICK": self.pick}


@dataclass(frozen=True)
class OffsiteCopySettings:
    """The offsite copy job: which kinds it copies, how often, and where to (the home region is the
    function's own)."""

    offsite: Offsite

    @classmethod
    def from_env(cls, environ: Env | None = None) -> OffsiteCopySettings:
        offsite = Offsite.from_env(environ)
        if offsite is None:
            raise SettingsError(f"environment variable {OFFSITE_PREFIX}REGION is missing or empty")
        return cls(offsite)

    def to_env(self) -> dict[str, str]:
        return self.offsite.to_env()


_KEY_ARN = re.compile(
    r"^arn:(?P<partition>aws[\w-]*):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/[\w-]+$"
)


@dataclass(frozen=True)
class IamReviewSettings:
    """The monthly IAM review: where its records go, what the backups are (bucket, key) and which stack
    and role are this system's own (the stack's roles are checked for drift; the prune role deletes
    backups by design)."""

    bucket: str
    key_arn: str  # the backup key; its ARN also names the partition, region and account of the backups
    stack_name: str
    prune_role: str  # the name of the prune function's role

    @classmethod
    def from_env(cls, environ: Env | None = None) -> IamReviewSettings:
        return cls(
            bucket=env_str("BACKUP_BUCKET", environ),
            key_arn=env_str("BACKUP_KEY_ARN", environ),
            stack_name=env_str("STACK_NAME", environ),
            prune_role=env_str("PRUNE_ROLE_NAME", environ),
        )

    def to_env(self) -> dict[str, str]:
        return {
            "BACKUP_BUCKET": self.bucket,
            "BACKUP_KEY_ARN": self.key_arn,
            "STACK_NAME": self.stack_name,
            "PRUNE_ROLE_NAME": self.prune_role,
        }

    def _key_part(self, name: str) -> str:
        """Checked when used, not in from_env(): the stack writes the ARN as a deploy-time token."""
        found = _KEY_ARN.match(self.key_arn)
        if found is None:
            raise SettingsError(
                f"environment variable BACKUP_KEY_ARN={self.key_arn!r} is not a KMS key ARN like "
                "arn:aws:kms:eu-central-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            )
        return found[name]

    @property
    def partition(self) -> str:
        return self._key_part("partition")

    @property
    def region(self) -> str:
        return self._key_part("region")

    @property
    def account(self) -> str:
        return self._key_part("account")


@dataclass(frozen=True)
class ReportSettings:
    """The weekly mail: everything verify checks (it runs the same checks), plus where the mail goes."""

    verify: VerifySettings
    topic_arn: str
    alarm_prefix: str
    ses_sender: str | None = None
    recipients: tuple[str, ...] = ()
    drill_enabled: bool = False  # restore_drill.enabled: an overdue drill is then a problem

    @property
    def retention(self) -> RetentionPolicy:
        return self.verify.retention

    @property
    def language(self) -> str:
        """One LANGUAGE for the whole mail: verify's sentences are part of it."""
        return self.verify.language

    @classmethod
    def from_env(cls, environ: Env | None = None) -> ReportSettings:
        sender = _env(environ).get("SES_SENDER", "").strip() or None
        recipients = env_list("NOTIFICATION_EMAILS", environ)
        if sender and not recipients:
            raise SettingsError("environment variable NOTIFICATION_EMAILS is empty but SES_SENDER is set")
        return cls(
            verify=VerifySettings.from_env(environ),
            topic_arn=env_str("ALARM_TOPIC_ARN", environ),
            alarm_prefix=env_str("ALARM_PREFIX", environ),
            ses_sender=sender,
            recipients=recipients,
            drill_enabled=env_bool("DRILL_ENABLED", False, environ),
        )

    def to_env(self) -> dict[str, str]:
        return {
            **self.verify.to_env(),
            "ALARM_TOPIC_ARN": self.topic_arn,
            "ALARM_PREFIX": self.alarm_prefix,
            "SES_SENDER": self.ses_sender or "",
            "NOTIFICATION_EMAILS": ",".join(self.recipients),
            "DRILL_ENABLED": _flag(self.drill_enabled),
        }


@dataclass(frozen=True)
class DrillNetwork:
    """The isolated network the stack builds for the drill (no internet gateway, no NAT, no peering)."""

    vpc_id: str
    subnet_ids: tuple[str, ...]  # private subnets in two AZs: the DB subnet group needs both
    server_security_group: str  # no inbound; outbound only to the drill DB and the VPC endpoints
    db_security_group: str  # inbound only from the drill server, on the DB port
    endpoint_security_group: str  # HTTPS only from the drill server
    db_subnet_group: str

    @classmethod
    def from_env(cls, environ: Env | None = None) -> DrillNetwork:
        subnets = env_list("DRILL_SUBNET_IDS", environ)
        if not subnets:
            raise SettingsError("environment variable DRILL_SUBNET_IDS is missing or empty")
        return cls(
            vpc_id=env_str("DRILL_VPC_ID", environ),
            subnet_ids=subnets,
            server_security_group=env_str("DRILL_SERVER_SG", environ),
            db_security_group=env_str("DRILL_DB_SG", environ),
            endpoint_security_group=env_str("DRILL_ENDPOINT_SG", environ),
            db_subnet_group=env_str("DRILL_DB_SUBNET_GROUP", environ),
        )

    def to_env(self) -> dict[str, str]:
        return {
            "DRILL_VPC_ID": self.vpc_id,
            "DRILL_SUBNET_IDS": ",".join(self.subnet_ids),
            "DRILL_SERVER_SG": self.server_security_group,
            "DRILL_DB_SG": self.db_security_group,
            "DRILL_ENDPOINT_SG": self.endpoint_security_group,
            "DRILL_DB_SUBNET_GROUP": self.db_subnet_group,
        }


@dataclass(frozen=True)
class DrillSettings:
    """The restore drill: which backups count (verify's settings), where it restores them, what it checks."""

    verify: VerifySettings
    network: DrillNetwork
    instance_profile: str  # name of the drill's instance profile (SSM only; never the server's own role)
    check_document: str  # the SSM document that runs the checks on the restored server
    topic_arn: str
    instance_type: str = "t3.micro"
    db_instance_class: str = "db.t3.micro"
    rto_target_minutes: int = 240
    max_runtime_minutes: int = 360

    @property
    def language(self) -> str:
        return self.verify.language

    @classmethod
    def from_env(cls, environ: Env | None = None) -> DrillSettings:
        return cls(
            verify=VerifySettings.from_env(environ),
            network=DrillNetwork.from_env(environ),
            instance_profile=env_str("DRILL_INSTANCE_PROFILE", environ),
            check_document=env_str("DRILL_CHECK_DOCUMENT", environ),
            topic_arn=env_str("ALARM_TOPIC_ARN", environ),
            instance_type=env_str("DRILL_INSTANCE_TYPE", environ),
            db_instance_class=env_str("DRILL_DB_CLASS", environ),
            rto_target_minutes=env_int("DRILL_RTO_TARGET_MINUTES", 1, environ),
            max_runtime_minutes=env_int("DRILL_MAX_RUNTIME_MINUTES", 1, environ),
        )

    def to_env(self) -> dict[str, str]:
        return {
            **self.verify.to_env(),
            **self.network.to_env(),
            "DRILL_INSTANCE_PROFILE": self.instance_profile,
            "DRILL_CHECK_DOCUMENT": self.check_document,
            "ALARM_TOPIC_ARN": self.topic_arn,
            "DRILL_INSTANCE_TYPE": self.instance_type,
            "DRILL_DB_CLASS": self.db_instance_class,
            "DRILL_RTO_TARGET_MINUTES": str(self.rto_target_minutes),
            "DRILL_MAX_RUNTIME_MINUTES": str(self.max_runtime_minutes),
        }

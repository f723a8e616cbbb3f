"""The deployment configuration: the ``schoolbackup`` context block of cdk.json as frozen dataclasses.

No CDK import here, so the CLI reads exactly the configuration that synth uses. :func:`load_config`
validates every field and collects *all* problems; :class:`ConfigError` carries one line per
problem, each naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from infra.cron import Cron, CronError, clock_changes, parse_cron
from lambdas.common.contracts import (
    AWS_REGION,
    COPIED_KINDS,
    EC2_INSTANCE_ID,
    KINDS,
    OFFSITE_ROLE_NAME,
    RDS_INSTANCE_ID,
    TAG_PART,
    offsite_role_arn,
)
from lambdas.common.retention import RetentionPolicy
from lambdas.common.settings import (
    CROSS_ACCOUNT_TARGETS,
    DEFAULT_AMI_MAX_AGE_HOURS,
    DEFAULT_DUMP_MAX_AGE_HOURS,
    DEFAULT_RDS_MAX_AGE_HOURS,
    FREQUENCIES,
    LANGUAGES,
    OFFSITE_POLICY,
    OFFSITE_TARGETS,
    Selection,
    SelectionTag,
    Targets,
)

CONTEXT_KEY: Final = "schoolbackup"
# A check runs after the backups it checks (on days both run): verify after the dump and the snapshots,
# restore_test after the dump; otherwise it judges the day before's backup.
CHECKS: Final[dict[str, tuple[str, ...]]] = {
    "verify": ("dump", "rds_snapshot", "ami_backup", "offsite_copy"),
    "restore_test": ("dump",),
}

# Jobs with a schedule, and their defaults (DESIGN.md). Times are in the configured timezone; none falls
# in a daylight-saving gap (02:00-02:59 on the last Sunday of March in Europe/Zurich) or fold.
DEFAULT_SCHEDULES: Final[dict[str, str]] = {
    "dump": "cron(30 1 * * ? *)",
    "rds_snapshot": "cron(30 3 * * ? *)",
    "ami_backup": "cron(0 3 ? * SUN *)",
    "prune": "cron(0 5 * * ? *)",
    "verify": "cron(30 6 * * ? *)",
    "restore_test": "cron(0 7 ? * MON *)",
    "report": "cron(30 7 ? * MON *)",
    "iam_review": "cron(0 8 1 * ? *)",
    "restore_drill": "cron(0 6 ? 1,7 SAT#1 *)",
    # after rds_snapshot and ami_backup (it copies what they made once it is usable), before prune
    "offsite_copy": "cron(15 4 * * ? *)",
}

# RFC 2606 / RFC 6761 names that can never receive mail: fine for the shipped example, refused on deploy.
EXAMPLE_ACCOUNT: Final = "123456789012"
EXAMPLE_DB_HOST_PREFIX: Final = "school-db.abcdefghijkl."
EXAMPLE_DOMAINS: Final = ("example.org", "example.com", "example.net", "example.edu", "invalid", "test")

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$"
)
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_ROLE_PREFIX = re.compile(r"^[\w+=,.@-]{1,50}$")  # + "-prune" and the like stays within 64
_ACCOUNT = re.compile(r"^\d{12}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,63}$")
_PATH = re.compile(r"^/[^\0\s'\"`$\\;|&<>]*$")
_LOG_RETENTION_DAYS: Final = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class ConfigError(ValueError):
    """One or more configuration values are invalid; ``problems`` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Dump:
    enabled: bool
    paths: tuple[str, ...]
    engine: str  # mysql | postgres
    db_host: str
    db_port: int
    db_name: str
    db_secret_arn: str
    server_role_name: str
    compression: str  # gzip | zstd
    timeout_minutes: int
    mysql_consistency: str  # single-transaction | lock-tables
    max_part_mib: int


@dataclass(frozen=True)
class Bucket:
    object_lock_days: int
    transition_to_ia_days: int
    expiry_days: int
    noncurrent_expiry_days: int
    access_log_expiry_days: int


@dataclass(frozen=True)
class RestoreDrill:
    enabled: bool
    subnet_id: str | None  # always None: the drill runs in the isolated VPC the stack builds
    instance_type: str
    db_instance_class: str
    rto_target_minutes: int
    max_runtime_minutes: int
    app_url: str = "http://localhost/"
    db_check_sql: str | None = None  # None: the dumped database has at least one table

    def check_sql(self, engine: str) -> str:
        if self.db_check_sql:
            return self.db_check_sql
        if engine == "postgres":
            return "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        return "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"


@dataclass(frozen=True)
class Offsite:
    """Offsite copies in another region, of this account or of another one (off by default: they cost
    money). With ``account`` (the target account), ``home_account`` is the account of the home stack
    (both stacks name each other's principals) and ``role_name`` the name prefix of the roles there
    that the home jobs assume (``<role_name>-copy``, ``-prune``, ``-read``)."""

    enabled: bool
    region: str
    account: str | None  # the target account; None: the offsite region of this account
    role_name: str  # with a target account: the prefix of the roles there
    home_account: str | None  # with a target account: the home stack's account
    kinds: tuple[str, ...]  # dump (S3 replication), rds, ami (the copy job)
    rds_frequency: str  # daily | weekly
    ami_frequency: str
    retention: RetentionPolicy
    targets: Targets
    replication_alarm_minutes: int  # an object not replicated after this long raises an alarm

    def copies(self, kind: str) -> bool:
        return self.enabled and kind in self.kinds

    @property
    def cross_account(self) -> bool:
        """The copies go into another account (``account``)."""
        return self.enabled and self.account is not None

    def role_arn(self, use: str, partition: str = "aws") -> str | None:
        """With a target account, the ARN of its role for ``use`` (copy, prune, read); else None."""
        if not self.cross_account or self.account is None:
            return None
        return offsite_role_arn(partition, self.account, self.role_name, use)


@dataclass(frozen=True)
class Config:
    notification_emails: tuple[str, ...]
    timezone: str
    language: str
    ses_sender: str | None
    selection: Selection
    schedules: Mapping[str, str]
    retention: RetentionPolicy
    ami_no_reboot: bool
    dump: Dump
    bucket: Bucket
    targets: Targets
    restore_drill: RestoreDrill
    log_retention_days: int
    tracing: bool
    offsite: Offsite

    def switched_off(self) -> frozenset[str]:
        """The scheduled jobs that this configuration does not deploy."""
        off = set()
        if not self.dump.enabled:
            off.add("dump")
        if not any(self.offsite.copies(kind) for kind in COPIED_KINDS):
            off.add("offsite_copy")
        if not self.restore_drill.enabled:
            off.add("restore_drill")
        return frozenset(off)

    def cron(self, job: str) -> Cron:
        return parse_cron(self.schedules[job])

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def example_values(self) -> list[str]:
        """Settings still holding the shipped example's placeholders (the AWS documentation account)."""
        found = []
        if self.dump.enabled and f":{EXAMPLE_ACCOUNT}:" in self.dump.db_secret_arn:
            found.append(f"dump.db_secret_arn ({self.dump.db_secret_arn})")
        if self.dump.enabled and self.dump.db_host.startswith(EXAMPLE_DB_HOST_PREFIX):
            found.append(f"dump.db_host ({self.dump.db_host})")
        return found

    def example_addresses(self) -> list[str]:
        """Addresses at domains that cannot receive mail (the shipped example)."""
        found = [*self.notification_emails, *([self.ses_sender] if self.ses_sender else [])]
        return [a for a in found if a.rsplit("@", 1)[-1].lower().endswith(EXAMPLE_DOMAINS)]


T = TypeVar("T")


class _Reader:
    """Reads one nested block, recording problems instead of stopping at the first."""

    def __init__(self, data: Any, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.fail(path, data, "a JSON object")
            data = {}
        self.data: Mapping[str, Any] = data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, key: str, value: Any, allowed: str) -> None:
        self.problems.append(f"{key}: {value!r} is not allowed; expected {allowed}")

    def child(self, name: str) -> _Reader:
        return _Reader(self.data.get(name), self.key(name), self.problems)

    def unknown(self, known: set[str]) -> None:
        # Keys starting with _ are comments (JSON has none).
        for extra in sorted(k for k in set(self.data) - known if not str(k).startswith("_")):
            self.problems.append(
                f"{self.key(extra)}: unknown setting; known settings: {', '.join(sorted(known))}"
            )

    def get(self, name: str, default: T, check: Callable[[Any], bool], allowed: str) -> T:
        value = self.data.get(name, default)
        if not check(value):
            self.fail(self.key(name), value, allowed)
            return default
        return value  # type: ignore[no-any-return]

    def integer(self, name: str, default: int, minimum: int, maximum: int = 100_000) -> int:
        return self.get(
            name,
            default,
            lambda v: type(v) is int and minimum <= v <= maximum,
            f"a whole number from {minimum} to {maximum}",
        )

    def boolean(self, name: str, default: bool) -> bool:
        return self.get(name, default, lambda v: isinstance(v, bool), "true or false")

    def text(self, name: str, default: str, pattern: re.Pattern[str], allowed: str) -> str:
        return self.get(name, default, lambda v: isinstance(v, str) and bool(pattern.match(v)), allowed)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        return self.get(name, default, lambda v: v in choices, " or ".join(choices))

    def strings(
        self,
        name: str,
        default: tuple[str, ...],
        pattern: re.Pattern[str],
        allowed: str,
        non_empty: bool = False,
    ) -> tuple[str, ...]:
        value = self.data.get(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(self.key(name), value, f"a list of {allowed}")
            return default
        if non_empty and not value:
            self.fail(self.key(name), value, f"at least one of {allowed}")
        for i, item in enumerate(value):
            if not pattern.match(item):
                self.fail(f"{self.key(name)}[{i}]", item, allowed)
        if len(set(value)) != len(value):
            self.fail(self.key(name), value, "no duplicates")
        return tuple(value)


def _valid_zone(value: Any) -> bool:
    if not isinstance(value, str) or not value or value.startswith("/") or ".." in value:
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _clock_problems(key: str, expression: str, tz: ZoneInfo, today: date) -> list[str]:
    problems = []
    changes = clock_changes(parse_cron(expression), tz, today)
    for kind in ("gap", "fold"):
        hits = [c for c in changes if c.kind == kind]
        if not hits:
            continue
        dates = ", ".join(sorted({f"{c.day:%Y-%m-%d}" for c in hits})[:3])
        at = ", ".join(sorted({c.run_time for c in hits}))
        if kind == "gap":
            why = (
                f"{at} does not exist in {tz.key} when the clocks go forward ({hits[0].window} is skipped), "
                f"so EventBridge Scheduler would skip the run on {dates}"
            )
        else:
            why = (
                f"{at} happens twice in {tz.key} when the clocks go back ({hits[0].window} is repeated), so "
                f"the run on {dates} could be doubled or dropped"
            )
        problems.append(
            f"{key}: {expression!r} is not allowed; expected a time that exists exactly once every day in "
            f"{tz.key} (outside {hits[0].window}): {why}"
        )
    return problems


def _order_problems(
    schedules: Mapping[str, str], tz: ZoneInfo, today: date, switched_off: frozenset[str]
) -> list[str]:
    """A check scheduled before a backup it checks on the same day (and not shortly after the previous
    one): it would judge the previous backup, not that day's."""
    start = datetime(today.year, today.month, today.day, tzinfo=tz)
    needed = set(CHECKS) | {job for jobs in CHECKS.values() for job in jobs}
    runs = {job: parse_cron(schedules[job]).next_runs(start - timedelta(days=1), 60, tz) for job in needed}
    problems = []
    for check, jobs in CHECKS.items():
        for job in jobs:
            if job in switched_off:
                continue
            for c in runs[check]:
                if c < start:
                    continue
                if c - start > timedelta(days=35):
                    break
                later = [j for j in runs[job] if j.date() == c.date() and j > c]
                earlier = [j for j in runs[job] if c - timedelta(hours=12) <= j < c]
                if later and not earlier:
                    problems.append(
                        f"{CONTEXT_KEY}.schedules.{check}: {schedules[check]!r} is not allowed; expected a time "
                        f"after {job} ({later[0]:%H:%M}): at {c:%H:%M} {check} runs before {job} on the same day "
                        f"(e.g. {c:%Y-%m-%d}) and would judge the previous {job} backup instead of that day's"
                    )
                    break
    return problems


def _today(timezone: str, today: date | None) -> date:
    return today or datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


def _read_schedules(root: _Reader, timezone: str, today: date | None) -> dict[str, str]:
    """Every job's cron expression; refused when invalid or when it meets a daylight-saving change."""
    sch = root.child("schedules")
    sch.unknown(set(DEFAULT_SCHEDULES))
    schedules: dict[str, str] = {}
    valid: set[str] = set()
    for job, default in DEFAULT_SCHEDULES.items():
        value = sch.data.get(job, default)
        try:
            parse_cron(value)
            valid.add(job)
        except CronError as err:
            sch.fail(sch.key(job), value, f"an EventBridge cron expression like {default} ({err})")
            value = default
        schedules[job] = value
    if _valid_zone(timezone):
        zone, start = ZoneInfo(timezone), _today(timezone, today)
        for job in sorted(valid):
            sch.problems.extend(_clock_problems(sch.key(job), schedules[job], zone, start))
    return schedules


ROOT_KEYS: Final = frozenset(
    {
        "notification_emails",
        "timezone",
        "language",
        "ses_sender",
        "selection",
        "schedules",
        "retention",
        "ami",
        "dump",
        "bucket",
        "targets",
        "restore_drill",
        "log_retention_days",
        "tracing",
        "offsite",
    }
)


def _read_emails(root: _Reader) -> tuple[str, ...]:
    emails = root.strings(
        "notification_emails", (), _EMAIL, "e-mail addresses like it-admin@school.ch", non_empty=True
    )
    if len(emails) == 1:
        root.fail(
            root.key("notification_emails"),
            list(emails),
            "two or more addresses: the admin and the deputy who takes over when the admin is away",
        )
    return emails


def _read_selection(root: _Reader) -> Selection:
    sel = root.child("selection")
    sel.unknown({"tag_key", "tag_value", "ec2_instance_ids", "rds_instance_ids"})
    allowed = "a tag {} of 1-128 letters, digits, spaces or _.:/=+-@"
    return Selection(
        tag=SelectionTag(
            key=sel.text("tag_key", "Backup", TAG_PART, allowed.format("key")),
            value=sel.text("tag_value", "true", TAG_PART, allowed.format("value")),
        ),
        ec2_instance_ids=sel.strings(
            "ec2_instance_ids", (), EC2_INSTANCE_ID, "EC2 instance ids like i-0123456789abcdef0"
        ),
        rds_instance_ids=sel.strings(
            "rds_instance_ids", (), RDS_INSTANCE_ID, "RDS instance identifiers like school-db"
        ),
    )


HOME_POLICY: Final = RetentionPolicy(keep_daily=7, keep_weekly=4, keep_monthly=3, max_age_days=90, min_keep=3)


def _read_retention(parent: _Reader, d: RetentionPolicy = HOME_POLICY) -> RetentionPolicy:
    """``<parent>.retention`` (the home policy, or offsite's with its own defaults ``d``)."""
    ret = parent.child("retention")
    ret.unknown({"keep_daily", "keep_weekly", "keep_monthly", "max_age_days", "min_keep"})
    retention = RetentionPolicy(
        keep_daily=ret.integer("keep_daily", d.keep_daily, 0, 3650),
        keep_weekly=ret.integer("keep_weekly", d.keep_weekly, 0, 520),
        keep_monthly=ret.integer("keep_monthly", d.keep_monthly, 0, 120),
        max_age_days=ret.integer("max_age_days", d.max_age_days, 1, 3650),
        min_keep=ret.integer("min_keep", d.min_keep, 1, 100),
    )
    if retention.keep_daily + retention.keep_weekly + retention.keep_monthly == 0:
        ret.fail(ret.key("keep_daily/keep_weekly/keep_monthly"), 0, "at least one of them above 0")
    return retention


def _read_ami_no_reboot(root: _Reader) -> bool:
    ami = root.child("ami")
    ami.unknown({"no_reboot"})
    return ami.boolean("no_reboot", True)


DUMP_KEYS: Final = frozenset(
    {
        "enabled",
        "paths",
        "engine",
        "db_host",
        "db_port",
        "db_name",
        "db_secret_arn",
        "server_role_name",
        "compression",
        "timeout_minutes",
        "mysql_consistency",
        "max_part_mib",
    }
)
WELL_KNOWN_PORTS: Final = {"mysql": 3306, "postgres": 5432}


def _read_dump(root: _Reader) -> Dump:
    dmp = root.child("dump")
    dmp.unknown(set(DUMP_KEYS))
    engine = dmp.choice("engine", "mysql", ("mysql", "postgres"))
    enabled = dmp.boolean("enabled", True)

    def server_setting(name: str, pattern: re.Pattern[str], allowed: str) -> str:
        """Required for the dump; with the dump switched off it may be left out."""
        if not enabled and name not in dmp.data:
            return ""
        return dmp.text(name, "", pattern, allowed)

    dump = Dump(
        enabled=enabled,
        paths=dmp.strings(
            "paths",
            ("/etc", "/var/www"),
            _PATH,
            "absolute paths like /var/www (no spaces, quotes or shell characters)",
            non_empty=True,
        ),
        engine=engine,
        db_host=server_setting(
            "db_host",
            _HOSTNAME,
            "the database host name, e.g. school-db.abc123.eu-central-2.rds.amazonaws.com",
        ),
        db_port=dmp.integer("db_port", WELL_KNOWN_PORTS[engine], 1, 65535),
        db_name=dmp.text("db_name", "school", _DB_NAME, "a database name of letters, digits and _"),
        db_secret_arn=server_setting(
            "db_secret_arn",
            _SECRET_ARN,
            "a Secrets Manager secret ARN like arn:aws:secretsmanager:eu-central-2:123456789012:secret:name-AbCdEf",
        ),
        server_role_name=server_setting(
            "server_role_name", _ROLE_NAME, "the name (not the ARN) of the web server's existing IAM role"
        ),
        compression=dmp.choice("compression", "gzip", ("gzip", "zstd")),
        timeout_minutes=dmp.integer("timeout_minutes", 120, 5, 2880),
        mysql_consistency=dmp.choice(
            "mysql_consistency", "single-transaction", ("single-transaction", "lock-tables")
        ),
        max_part_mib=dmp.integer("max_part_mib", 64, 5, 5120),
    )
    other = next(e for e in WELL_KNOWN_PORTS if e != dump.engine)
    if dump.db_port == WELL_KNOWN_PORTS[other]:
        dmp.fail(
            dmp.key("db_port"),
            dump.db_port,
            f"the port of {dump.engine} (leave db_port out for {WELL_KNOWN_PORTS[dump.engine]}); "
            f"{dump.db_port} is {other}'s port",
        )
    return dump


def _read_bucket(root: _Reader) -> Bucket:
    bkt = root.child("bucket")
    bkt.unknown(
        {
            "object_lock_days",
            "transition_to_ia_days",
            "expiry_days",
            "noncurrent_expiry_days",
            "access_log_expiry_days",
        }
    )
    bucket = Bucket(
        object_lock_days=bkt.integer("object_lock_days", 30, 1, 3650),
        transition_to_ia_days=bkt.integer("transition_to_ia_days", 30, 30, 3650),
        expiry_days=bkt.integer("expiry_days", 90, 1, 3650),
        noncurrent_expiry_days=bkt.integer("noncurrent_expiry_days", 30, 1, 3650),
        access_log_expiry_days=bkt.integer("access_log_expiry_days", 365, 1, 3650),
    )
    if bucket.expiry_days <= bucket.transition_to_ia_days:
        bkt.fail(
            bkt.key("expiry_days"),
            bucket.expiry_days,
            f"more days than transition_to_ia_days ({bucket.transition_to_ia_days})",
        )
    if bucket.expiry_days < bucket.object_lock_days:
        bkt.fail(
            bkt.key("expiry_days"),
            bucket.expiry_days,
            f"at least object_lock_days ({bucket.object_lock_days}); locked dumps cannot expire earlier",
        )
    return bucket


HOME_TARGETS: Final = Targets(
    DEFAULT_DUMP_MAX_AGE_HOURS, DEFAULT_RDS_MAX_AGE_HOURS, DEFAULT_AMI_MAX_AGE_HOURS
)


def _read_targets(parent: _Reader, d: Targets = HOME_TARGETS) -> Targets:
    """``<parent>.targets`` (at home, or offsite's with its own defaults ``d``)."""
    tgt = parent.child("targets")
    tgt.unknown({"dump_max_age_hours", "rds_max_age_hours", "ami_max_age_hours"})
    return Targets(
        dump_max_age_hours=tgt.integer("dump_max_age_hours", d.dump_max_age_hours, 1, 24 * 31),
        rds_max_age_hours=tgt.integer("rds_max_age_hours", d.rds_max_age_hours, 1, 24 * 31),
        ami_max_age_hours=tgt.integer("ami_max_age_hours", d.ami_max_age_hours, 1, 24 * 62),
    )


def _read_drill(root: _Reader) -> RestoreDrill:
    drl = root.child("restore_drill")
    drl.unknown(
        {
            "enabled",
            "subnet_id",
            "instance_type",
            "db_instance_class",
            "rto_target_minutes",
            "max_runtime_minutes",
            "app_url",
            "db_check_sql",
        }
    )
    drill = RestoreDrill(
        enabled=drl.boolean("enabled", True),
        subnet_id=drl.get(
            "subnet_id",
            None,
            lambda v: v is None,
            "null: the drill always runs in an isolated VPC that the stack creates (no internet, no route to "
            "production); a subnet of the school's own VPC would let the restored server reach production",
        ),
        instance_type=drl.text(
            "instance_type",
            "t3.micro",
            re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"),
            "an EC2 instance type like t3.micro",
        ),
        db_instance_class=drl.text(
            "db_instance_class",
            "db.t3.micro",
            re.compile(r"^db\.[a-z0-9-]+\.[a-z0-9]+$"),
            "an RDS instance class like db.t3.micro",
        ),
        rto_target_minutes=drl.integer("rto_target_minutes", 240, 10, 2880),
        max_runtime_minutes=drl.integer("max_runtime_minutes", 360, 60, 2880),
        app_url=drl.text(
            "app_url",
            "http://localhost/",
            re.compile(r"^https?://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?(/[A-Za-z0-9._~/?=&%-]*)?$"),
            "a URL on the restored server itself, like http://localhost/ or http://localhost:8080/health",
        ),
        db_check_sql=drl.get(
            "db_check_sql",
            None,
            lambda v: v is None or (isinstance(v, str) and 0 < len(v.strip()) <= 1000 and "\n" not in v),
            "null (the database has at least one table) or one SQL query whose first value is not 0, like "
            "SELECT COUNT(*) FROM pupils",
        ),
    )
    if drill.max_runtime_minutes < drill.rto_target_minutes:
        drl.fail(
            drl.key("max_runtime_minutes"),
            drill.max_runtime_minutes,
            f"at least rto_target_minutes ({drill.rto_target_minutes})",
        )
    return drill


OFFSITE_KEYS: Final = frozenset(
    {
        "enabled",
        "region",
        "account",
        "home_account",
        "role_name",
        "kinds",
        "rds_frequency",
        "ami_frequency",
        "retention",
        "targets",
        "replication_alarm_minutes",
    }
)


def _read_offsite(root: _Reader, object_lock_days: int) -> Offsite:
    off = root.child("offsite")
    off.unknown(set(OFFSITE_KEYS))
    enabled = off.boolean("enabled", False)
    region = off.get(
        "region",
        "",
        lambda v: isinstance(v, str) and ((v == "" and not enabled) or bool(AWS_REGION.match(v))),
        "the AWS region that holds the copies, like eu-central-1 (another region than the stack's)",
    )
    account = off.get(
        "account",
        None,
        lambda v: v is None or (isinstance(v, str) and bool(_ACCOUNT.match(v))),
        "null (the offsite region of this account) or the 12-digit id of the target account, as a string",
    )
    home_account = off.get(
        "home_account",
        None,
        lambda v: v is None or (isinstance(v, str) and bool(_ACCOUNT.match(v))),
        "the 12-digit id of the account this stack is deployed to, as a string (only with account)",
    )
    role_name = off.get(
        "role_name",
        OFFSITE_ROLE_NAME,
        lambda v: isinstance(v, str) and bool(_ROLE_PREFIX.match(v)),
        "a role name prefix of at most 50 letters, digits and +=,.@_- (the roles <role_name>-copy, "
        "-prune and -read in the target account)",
    )
    if enabled and account is not None:
        if home_account is None:
            off.fail(
                off.key("home_account"),
                None,
                f"the id of the account this stack is deployed to: with offsite.account ({account}) both "
                "stacks name each other's principals",
            )
        elif home_account == account:
            off.fail(
                off.key("account"),
                account,
                "another account than home_account; for copies in the same account set account to null",
            )
    elif home_account is not None:
        off.fail(off.key("home_account"), home_account, "null without offsite.account")
    kinds = off.strings(
        "kinds", KINDS, re.compile(f"^({'|'.join(KINDS)})$"), " or ".join(KINDS), non_empty=True
    )
    offsite = Offsite(
        enabled=enabled,
        region=region,
        account=account,
        role_name=role_name,
        home_account=home_account,
        kinds=kinds,
        rds_frequency=off.choice("rds_frequency", "daily", FREQUENCIES),
        ami_frequency=off.choice("ami_frequency", "weekly", FREQUENCIES),
        retention=_read_retention(off, OFFSITE_POLICY),
        # into another account an RDS snapshot or AMI arrives a run later (through a staging copy)
        targets=_read_targets(off, OFFSITE_TARGETS if account is None else CROSS_ACCOUNT_TARGETS),
        replication_alarm_minutes=off.integer("replication_alarm_minutes", 120, 15, 1440),
    )
    if enabled and "dump" in kinds and offsite.retention.max_age_days < object_lock_days:
        off.fail(
            off.key("retention.max_age_days"),
            offsite.retention.max_age_days,
            f"at least bucket.object_lock_days ({object_lock_days}): the copies keep the dumps' Object Lock "
            "and cannot expire earlier",
        )
    return offsite


def load_config(context: Any, today: date | None = None) -> Config:
    """Build and validate the configuration from the ``schoolbackup`` context block (``today``: where
    the look at the coming daylight-saving changes starts; default: the current date)."""
    problems: list[str] = []
    if context is None:
        raise ConfigError([f"{CONTEXT_KEY}: missing; cdk.json needs a context block named {CONTEXT_KEY!r}"])
    root = _Reader(context, CONTEXT_KEY, problems)
    root.unknown(set(ROOT_KEYS))
    emails = _read_emails(root)
    timezone = root.get("timezone", "Europe/Zurich", _valid_zone, "an IANA timezone name like Europe/Zurich")
    bucket = _read_bucket(root)
    config = Config(
        notification_emails=emails,
        timezone=timezone,
        language=root.choice("language", "en", LANGUAGES),
        ses_sender=root.get(
            "ses_sender",
            None,
            lambda v: v is None or (isinstance(v, str) and bool(_EMAIL.match(v))),
            "null or an SES-verified sender address",
        ),
        selection=_read_selection(root),
        schedules=_read_schedules(root, timezone, today),
        retention=_read_retention(root),
        ami_no_reboot=_read_ami_no_reboot(root),
        dump=_read_dump(root),
        bucket=bucket,
        targets=_read_targets(root),
        restore_drill=_read_drill(root),
        log_retention_days=root.get(
            "log_retention_days",
            90,
            lambda v: v in _LOG_RETENTION_DAYS,
            "one of CloudWatch's retention periods: " + ", ".join(map(str, _LOG_RETENTION_DAYS)),
        ),
        tracing=root.boolean("tracing", False),
        offsite=_read_offsite(root, bucket.object_lock_days),
    )
    if _valid_zone(timezone):
        problems.extend(
            _order_problems(
                config.schedules,
                ZoneInfo(timezone),
                _today(timezone, today),
                config.switched_off(),
            )
        )
    if problems:
        raise ConfigError(problems)
    return config

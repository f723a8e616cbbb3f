"""Is there a good, fresh backup of every selected source? (verify, daily; the weekly report runs it too)

Sources are the EC2 and RDS instances of the selection (lambdas.common.aws.selection). Kinds: ``dump``
and ``ami`` for EC2 instances (a dump's source is the server's instance id), ``rds`` for RDS instances.
For each (source, kind) the backups are read through the state table (lambdas.common.aws.states):

- rds: manual snapshots tagged ManagedBy=schoolbackup and BackupSource=<db>;
- ami: images with the same tags; usable only with every EBS snapshot completed (one
  DescribeSnapshots for all images);
- dump: the folders of the last few days, newest first, down to the newest usable one (one
  ListObjectsV2 per source and day, no HEAD per object).

A check fails with a sentence naming source, kind and what is wrong: no backup at all, the newest
backup failed, or the newest *good* backup older than the target.

With offsite copies (``settings.offsite``) the same checks run on the newest copy of each copied kind,
for the same sources, by ``offsite.targets`` and ``offsite.policy``: rds and ami in the offsite region
(the copies keep the originals' names and tags), dumps in the copy bucket. S3 replication copies each
object on its own, so a copied manifest may arrive before its parts: a copied dump is good only once
every object its manifest lists is in the copy bucket (the day's listing shows them, with their sizes);
until then it is pending, not failed. These checks are ``VerifyResult.offsite_checks``; their sentences
say "offsite copy in <region>".
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.aws.db_snapshots import managed_db_snapshots
from lambdas.common.aws.dumps import inspect_dump
from lambdas.common.aws.errors import error_text
from lambdas.common.aws.images import managed_images, snapshot_ids, snapshot_states
from lambdas.common.aws.selection import (
    selected_databases,
    selected_servers,
    source_names,
)
from lambdas.common.aws.states import ami_state, rds_snapshot_state
from lambdas.common.contracts import (
    JOB_AMI,
    KIND_AMI,
    KIND_DUMP,
    KIND_RDS,
    SOURCE_KEY,
    State,
    parse_backup_name,
    parse_time,
    tag_dict,
)
from lambdas.common.issues import LATEST_FAILED, MISSING, NONE_USABLE, PRUNE_OVERDUE, STALE, Issue
from lambdas.common.manifest import DumpFolder, Manifest, days_back, list_dump_day
from lambdas.common.messages import Msg, msg, say
from lambdas.common.observability import logger
from lambdas.common.retention import RetentionPolicy
from lambdas.common.settings import Offsite, VerifySettings

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import DBSnapshotTypeDef
    from mypy_boto3_s3 import S3Client

    from lambdas.common.aws.clients import RegionClients

PRUNE_GRACE_DAYS: Final = 1


class VerificationFailed(RuntimeError):
    """At least one backup check failed; raised after every source was checked and metrics were published."""


def _fmt(when: datetime, zone: str) -> str:
    """The configured timezone first, then UTC (backup names are made from UTC times): for brackets."""
    local, utc = when.astimezone(ZoneInfo(zone)), when.astimezone(UTC)
    if zone == "UTC":
        return f"{utc:%d.%m.%Y %H:%M} UTC"
    in_utc = f"{utc:%H:%M}" if local.date() == utc.date() else f"{utc:%d.%m.%Y %H:%M}"
    return f"{local:%d.%m.%Y %H:%M} {zone}, {in_utc} UTC"


@dataclass(frozen=True)
class BackupSeen:
    """One backup as a check sees it; ``detail`` says why it is not usable.

    ``note`` is for a usable backup with something the admin should know (not an alarm).
    """

    id: str
    created: datetime
    state: State
    text: Msg | None = None  # why it is not usable
    note_text: Msg | None = None

    @property
    def detail(self) -> str:
        return self.text.render("en") if self.text is not None else ""

    @property
    def note(self) -> str:
        return self.note_text.render("en") if self.note_text is not None else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": f"{self.created.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
            "state": str(self.state),
            **({"detail": self.detail} if self.detail else {}),
            **({"note": self.note} if self.note else {}),
        }


@dataclass
class Check:
    source: str
    kind: str
    target_hours: int
    now: datetime
    backups: list[BackupSeen] = field(default_factory=list)  # newest first
    issues: list[Issue] = field(default_factory=list)
    searched: Msg | None = None  # for "no backup found": where we looked
    zone: str = "UTC"  # the times in its sentences
    language: str = "en"  # of its sentences
    name: str = ""  # the source's Name tag
    region: str = ""  # the offsite region for a check of the offsite copies; "" at home

    @property
    def label(self) -> str:
        return f"{self.name} ({self.source})" if self.name else self.source

    @property
    def what(self) -> Msg:
        kind = msg(f"verify.kind.{self.kind}")
        if self.region:
            return msg("verify.what_offsite", kind=kind, source=self.label, region=self.region)
        return msg("verify.what", kind=kind, source=self.label)

    def line(self, text: Msg) -> str:
        """``dump of web (i-0abc...): <the sentence>`` in the check's language."""
        return f"{self.what.render(self.language)}: {text.render(self.language)}"

    @property
    def problems(self) -> list[str]:
        return [self.line(i.text) for i in self.issues]

    def _problem(self, cause: str, key: str, **values: object) -> None:
        self.issues.append(Issue(cause, msg(key, **values)))

    @property
    def newest(self) -> BackupSeen | None:
        return self.backups[0] if self.backups else None

    @property
    def newest_good(self) -> BackupSeen | None:
        return next((b for b in self.backups if b.state is State.USABLE), None)

    @property
    def notes(self) -> list[str]:
        """What the admin should know about the newest good backup; never an alarm."""
        good = self.newest_good
        if good is None or good.note_text is None:
            return []
        return [self.line(msg("verify.note", id=good.id, note=good.note_text))]

    @property
    def age_hours(self) -> float | None:
        good = self.newest_good
        if good is None:
            return None
        return max(0.0, (self.now - good.created).total_seconds() / 3600)

    @property
    def ok(self) -> bool:
        return not self.problems

    def evaluate(self) -> Check:
        """Fill ``problems`` from ``backups``; call once the backups are known."""
        self.backups.sort(key=lambda b: (b.created, b.id), reverse=True)
        newest, good, age = self.newest, self.newest_good, self.age_hours
        if newest is None:
            self._problem(MISSING, "verify.no_backup", searched=self.searched or "")
            return self
        if newest.state is State.FAILED:
            when = _fmt(newest.created, self.zone)
            self._problem(
                LATEST_FAILED, "verify.newest_failed", id=newest.id, when=when, detail=newest.text or ""
            )
        if good is None:
            self._problem(NONE_USABLE, "verify.none_usable", n=len(self.backups))
        elif age is not None and age > self.target_hours:
            when = _fmt(good.created, self.zone)
            self._problem(
                STALE, "verify.stale", id=good.id, age=f"{age:.0f}", when=when, target=self.target_hours
            )
        return self

    def check_pruned(self, policy: RetentionPolicy) -> Check:
        """Prune's dead-man check: usable backups past MAX_AGE_DAYS beyond the newest MIN_KEEP should be gone.

        Prune runs daily before verify, so one day of grace; dumps expire by the bucket lifecycle instead.
        """
        if self.kind == KIND_DUMP:
            return self
        usable = [b for b in self.backups if b.state is State.USABLE]  # newest first (evaluate sorted them)
        limit = self.now - timedelta(days=policy.max_age_days + PRUNE_GRACE_DAYS)
        overdue = [b for b in usable[policy.min_keep :] if b.created < limit]
        if overdue:
            oldest = overdue[-1]
            self._problem(
                PRUNE_OVERDUE,
                "verify.prune_overdue",
                n=len(overdue),
                days=policy.max_age_days,
                id=oldest.id,
                when=_fmt(oldest.created, self.zone),
            )
        return self

    def as_dict(self) -> dict[str, Any]:
        age = self.age_hours
        return {
            "source": self.source,
            "kind": self.kind,
            **({"region": self.region} if self.region else {}),
            "ok": self.ok,
            "target_hours": self.target_hours,
            "age_hours": None if age is None else round(age, 2),
            "newest": self.newest.as_dict() if self.newest else None,
            "newest_good": self.newest_good.as_dict() if self.newest_good else None,
            "count": len(self.backups),
            "problems": self.problems,
            "causes": [i.cause for i in self.issues],
            "notes": self.notes,
        }


@dataclass
class VerifyResult:
    now: datetime
    checks: list[Check]
    general: list[str] = field(default_factory=list)  # problems of no single check (selection)
    selection_tag: str = ""  # for the next step of a selection problem
    language: str = "en"
    names: dict[str, str] = field(default_factory=dict)  # source id -> its Name tag, for the admin
    offsite_checks: list[Check] = field(default_factory=list)  # of the copies in the offsite region
    offsite_general: list[str] = field(default_factory=list)  # the copies could not be read at all

    @property
    def offsite_problems(self) -> list[str]:
        return [*(p for c in self.offsite_checks for p in c.problems), *self.offsite_general]

    @property
    def problems(self) -> list[str]:
        return [*(p for c in self.checks for p in c.problems), *self.offsite_problems, *self.general]

    @property
    def failures(self) -> int:
        checks = (*self.checks, *self.offsite_checks)
        return sum(1 for c in checks if not c.ok) + len(self.general) + len(self.offsite_general)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked_at": f"{self.now:%Y-%m-%dT%H:%M:%SZ}",
            "passed": not self.problems,
            "failures": self.failures,
            "problems": list(self.problems),
            "checks": [c.as_dict() for c in self.checks],
            "offsite_checks": [c.as_dict() for c in self.offsite_checks],
        }

    def raise_if_failed(self) -> None:
        if self.problems:
            problems = " ".join(self.problems)
            raise VerificationFailed(
                say("verify.raised", self.language, n=len(self.problems), problems=problems)
            )


def _snapshot_time(snap: DBSnapshotTypeDef) -> datetime | None:
    created = snap.get("SnapshotCreateTime")
    if created is not None:
        return created.astimezone(UTC)
    parsed = parse_backup_name(snap.get("DBSnapshotIdentifier", ""))
    return parsed[1] if parsed else None


def rds_backups(rds: RDSClient) -> dict[str, list[BackupSeen]]:
    """Every schoolbackup manual snapshot, by BackupSource."""
    by_source: dict[str, list[BackupSeen]] = defaultdict(list)
    for snap in managed_db_snapshots(rds):
        source = tag_dict(snap.get("TagList")).get(SOURCE_KEY)
        created = _snapshot_time(snap)
        reading = rds_snapshot_state(snap.get("Status", "unknown"))
        if not source or created is None or reading.gone:
            continue
        seen = BackupSeen(snap["DBSnapshotIdentifier"], created, reading.for_verify(), reading.verify_text())
        by_source[source].append(seen)
    return by_source


def ami_backups(ec2: EC2Client) -> dict[str, list[BackupSeen]]:
    """Every schoolbackup AMI by BackupSource; an available AMI is good only if all its snapshots are."""
    images = managed_images(ec2, JOB_AMI)
    states = snapshot_states(
        ec2, {s for i in images if i.get("State") == "available" for s in snapshot_ids(i)}
    )
    by_source: dict[str, list[BackupSeen]] = defaultdict(list)
    for image in images:
        source = tag_dict(image.get("Tags")).get(SOURCE_KEY)
        raw_created = image.get("CreationDate")
        reading = ami_state(image.get("State", "unknown"), snapshot_ids(image), states)
        if source and raw_created and not reading.gone:
            name = image.get("Name", image["ImageId"])
            seen = BackupSeen(name, parse_time(raw_created), reading.for_verify(), reading.verify_text())
            by_source[source].append(seen)
    return by_source


def dump_lookback_days(target_hours: int) -> int:
    """Days to search for the newest good dump: the target plus two days, at least three."""
    return max(3, math.ceil(target_hours / 24) + 2)


def _inconsistent_note(manifest: Manifest | None) -> Msg | None:
    tables = manifest.inconsistent_tables if manifest else ()
    if not tables:
        return None
    shown: str | Msg = ", ".join(tables[:10])
    if len(tables) > 10:
        shown = msg("verify.and_more", shown=shown, n=len(tables) - 10)
    return msg("verify.inconsistent", n=len(tables), tables=shown)


def _not_replicated(folder: DumpFolder, manifest: Manifest | None) -> Msg | None:
    """For a copied dump: the objects its manifest lists that are not in the copy bucket yet, or None."""
    if manifest is None or not manifest.ok:
        return None
    missing = [o.key.rsplit("/", 1)[-1] for o in manifest.objects if o.key not in folder.sizes]
    return msg("verify.offsite_not_replicated", missing=", ".join(missing)) if missing else None


def dump_backups(
    s3: S3Client, bucket: str, source: str, now: datetime, days: int, *, replica: bool = False
) -> list[BackupSeen]:
    """Dumps of ``source`` in the last ``days`` UTC days, newest first, down to the newest good one.

    ``replica``: ``bucket`` is the copy bucket, where a manifest can arrive before its objects: such a
    dump is pending (not yet good, not failed) until every listed object is there."""
    found: list[BackupSeen] = []
    for day in days_back(now, days):
        for folder in list_dump_day(s3, bucket, source, day):
            name = folder.prefix.rstrip("/").rsplit("/", 1)[-1]
            reading, manifest = inspect_dump(s3, bucket, folder)
            when = manifest.finished_at if manifest is not None else folder.when
            incomplete = _not_replicated(folder, manifest) if replica else None
            if incomplete is not None:
                found.append(BackupSeen(name, when, State.PENDING, incomplete))
                continue
            state = reading.for_verify()
            note = _inconsistent_note(manifest) if state is State.USABLE else None
            found.append(BackupSeen(name, when, state, reading.verify_text(), note))
            if state is State.USABLE:
                return found
    return found


def _for_sources(
    kind: str,
    sources: Iterable[str],
    found: dict[str, list[BackupSeen]],
    hours: int,
    now: datetime,
    *,
    zone: str,
    language: str,
    names: dict[str, str],
    region: str = "",
) -> list[Check]:
    return [
        Check(
            s,
            kind,
            hours,
            now,
            backups=list(found.get(s, [])),
            zone=zone,
            language=language,
            name=names.get(s, ""),
            region=region,
        ).evaluate()
        for s in sources
    ]


def check_dumps(
    s3: S3Client,
    bucket: str,
    sources: Iterable[str],
    target_hours: int,
    now: datetime,
    *,
    zone: str = "UTC",
    language: str = "en",
    names: dict[str, str] | None = None,
    region: str = "",
) -> list[Check]:
    """``region``: ``bucket`` is the copy bucket in that (offsite) region."""
    days = dump_lookback_days(target_hours)
    checks: list[Check] = []
    for source in sources:
        check = Check(
            source,
            KIND_DUMP,
            target_hours,
            now,
            backups=dump_backups(s3, bucket, source, now, days, replica=bool(region)),
            zone=zone,
            language=language,
            name=(names or {}).get(source, ""),
            region=region,
        )
        check.searched = msg("verify.searched", days=days, where=f"s3://{bucket}/dumps/{source}/")
        checks.append(check.evaluate())
    return checks


def check_offsite(
    clients: RegionClients,
    offsite: Offsite,
    settings: VerifySettings,
    *,
    servers: Sequence[str],
    databases: Sequence[str],
    now: datetime,
    names: dict[str, str],
) -> list[Check]:
    """The newest offsite copy of each copied kind for each selected source (home selection)."""
    zone, language, targets, region = settings.timezone, settings.language, offsite.targets, offsite.region
    checks: list[Check] = []
    if offsite.copies(KIND_DUMP) and settings.dump_enabled:
        checks += check_dumps(
            clients.s3,
            offsite.bucket,
            servers,
            targets.dump_max_age_hours,
            now,
            zone=zone,
            language=language,
            names=names,
            region=region,
        )
    if offsite.copies(KIND_RDS):
        found = rds_backups(clients.rds)
        hours = targets.rds_max_age_hours
        checks += _for_sources(
            KIND_RDS, databases, found, hours, now, zone=zone, language=language, names=names, region=region
        )
    if offsite.copies(KIND_AMI):
        found = ami_backups(clients.ec2)
        hours = targets.ami_max_age_hours
        checks += _for_sources(
            KIND_AMI, servers, found, hours, now, zone=zone, language=language, names=names, region=region
        )
    for check in checks:
        check.check_pruned(offsite.policy)
        (logger.info if check.ok else logger.error)("offsite copy check", extra={"check": check.as_dict()})
    return checks


def run_checks(
    ec2: EC2Client,
    rds: RDSClient,
    s3: S3Client,
    settings: VerifySettings,
    now: datetime,
    *,
    offsite: RegionClients | None = None,
) -> VerifyResult:
    """Every check of every selected source; nothing is published or raised here.

    With ``settings.offsite``, ``offsite`` are the clients of the offsite region: the copies there are
    checked too. Without them the copies are not checked, and a problem says so (never a silent pass).
    """
    selection, targets = settings.selection, settings.targets
    servers = selected_servers(ec2, selection.tag, selection.ec2_instance_ids)
    databases = selected_databases(rds, selection.tag, selection.rds_instance_ids)
    names = source_names(servers, databases)
    zone, language = settings.timezone, settings.language
    checks: list[Check] = []
    if settings.dump_enabled:
        checks += check_dumps(
            s3,
            settings.bucket,
            servers.ids,
            targets.dump_max_age_hours,
            now,
            zone=zone,
            language=language,
            names=names,
        )
    for kind, ids, found, hours in (
        (KIND_RDS, databases.ids, rds_backups(rds), targets.rds_max_age_hours),
        (KIND_AMI, servers.ids, ami_backups(ec2), targets.ami_max_age_hours),
    ):
        checks += _for_sources(kind, ids, found, hours, now, zone=zone, language=language, names=names)
    for check in checks:
        check.check_pruned(settings.retention)
        (logger.info if check.ok else logger.error)("backup check", extra={"check": check.as_dict()})
    offsite_checks: list[Check] = []
    general: list[Msg] = []
    unreadable: list[Msg] = []
    if settings.offsite is not None:
        if offsite is None or offsite.region != settings.offsite.region:
            general.append(msg("verify.offsite_unchecked", region=settings.offsite.region))
        else:
            try:
                offsite_checks = check_offsite(
                    offsite,
                    settings.offsite,
                    settings,
                    servers=servers.ids,
                    databases=databases.ids,
                    now=now,
                    names=names,
                )
            except (ClientError, BotoCoreError) as err:  # e.g. the target account's role not assumable
                error = error_text(err)
                logger.error("offsite copies unreadable", extra={"error": error})
                unreadable.append(
                    msg("verify.offsite_unreadable", region=settings.offsite.region, error=error)
                )
    general += [msg("verify.missing_ec2", id=server) for server in servers.missing]
    general += [msg("verify.missing_rds", id=db) for db in databases.missing]
    general += [msg("verify.aurora", id=cluster) for cluster in databases.aurora_clusters]
    if not checks and not general:
        general.append(msg("verify.nothing_selected", tag=str(selection.tag)))
    return VerifyResult(
        now=now,
        checks=checks,
        general=[g.render(language) for g in general],
        names=names,
        selection_tag=str(selection.tag),
        language=language,
        offsite_checks=offsite_checks,
        offsite_general=[u.render(language) for u in unreadable],
    )

"""What ``restore db`` and ``restore server`` share: schoolbackup's backups read through the one state table,
which source and which backup to restore, waiting for AWS, printing the plan and the next steps.

Only what carries ``ManagedBy=schoolbackup`` is restored, only what the table calls usable. Nothing existing
is changed: a restore is a *new* instance next to the old one, with the old one's network settings and
without the selection tag (it is not backed up until the admin says it is the real one).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from botocore.exceptions import ClientError

from cli.backupctl.context import Cli
from cli.backupctl.errors import CliError, UsageError
from cli.backupctl.output import Output
from lambdas.common.aws.errors import error_code
from lambdas.common.aws.states import Reading
from lambdas.common.contracts import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    State,
    parse_backup_name,
    parse_time,
)
from lambdas.common.messages import say
from lambdas.common.settings import SelectionTag

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


# ``--from-region``: restore from the offsite copies (offsite.region), into that region.
FromRegion = Annotated[
    str | None,
    typer.Option(
        "--from-region",
        help="Restore from the offsite copies in this region (offsite.region in cdk.json); what is "
        "restored is created there.",
        show_default=False,
    ),
]
LATEST: Final = "latest"
RESTORED_FROM_KEY: Final = "RestoredFrom"
DEFAULT_SELECTION: Final = SelectionTag("Backup", "true")
DB_POLL_SECONDS: Final = 15.0
SERVER_POLL_SECONDS: Final = 5.0
SHOWN_ALTERNATIVES: Final = 3
RDS_ID_MAX: Final = 63
AMI_ID: Final = re.compile(r"^ami-[0-9a-f]{8,17}$")
GONE_EC2_STATES: Final = ("shutting-down", "terminated")
DB_FAILED_STATES: Final = frozenset(
    {
        "failed",
        "restore-error",
        "incompatible-restore",
        "incompatible-network",
        "incompatible-parameters",
        "incompatible-option-group",
        "inaccessible-encryption-credentials",
        "storage-full",
        "deleting",
        "deleted",
    }
)
SERVER_FAILED_STATES: Final = frozenset({"shutting-down", "terminated", "stopping", "stopped"})
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# The clock of the wait loops (tests replace them instead of sleeping).
_sleep: Callable[[float], None] = time.sleep
_now: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class Backup:
    """One RDS snapshot or AMI of schoolbackup, read through the state table."""

    id: str
    source: str
    created: datetime
    reading: Reading
    raw: Any = field(default=None, compare=False, repr=False)  # what AWS said about it

    @property
    def usable(self) -> bool:
        return self.reading.state is State.USABLE

    def why_not(self, language: str = "en") -> str:
        """Why it cannot be restored, as the end of a sentence ("is still creating")."""
        if self.reading.gone:
            return self.reading.describe(language)
        return self.reading.verify_detail(language)


def created(raw: Any, name: str) -> datetime:
    if isinstance(raw, datetime):
        return raw.astimezone(UTC)
    if isinstance(raw, str) and raw:
        try:
            return parse_time(raw)
        except ValueError:
            pass
    parsed = parse_backup_name(name)
    return parsed[1] if parsed else EPOCH


def newest_first(backups: Iterable[Backup]) -> list[Backup]:
    return sorted(backups, key=lambda b: (b.created, b.id), reverse=True)


def stamp(when: datetime, language: str = "en") -> str:
    if when == EPOCH:
        return say("cli.restore.unknown_time", language)
    return f"{when:%d.%m.%Y %H:%M} UTC" if language == "de" else f"{when:%Y-%m-%d %H:%M} UTC"


def names(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def both(first: str, second: str, language: str) -> str:
    """``a and b`` in the language (commands and flags, said as one)."""
    return say("cli.restore.both", language, first=first, second=second)


def listed(items: Sequence[str], language: str) -> str:
    """One or two items: ``a`` or ``a and b``."""
    return both(items[0], items[1], language) if len(items) == 2 else ", ".join(items)


def newest_usable_text(backups: Sequence[Backup], source: str | None, language: str) -> str:
    usable = [b for b in newest_first(backups) if b.usable and (source is None or b.source == source)]
    if not usable:
        if source:
            return say("cli.restore.no_usable_of", language, source=source)
        return say("cli.restore.no_usable", language)
    shown = ", ".join(
        f"{b.id} ({b.source}, {stamp(b.created, language)})" for b in usable[:SHOWN_ALTERNATIVES]
    )
    key = "cli.restore.newest_usable_one" if len(usable) == 1 else "cli.restore.newest_usable_many"
    return say(key, language, shown=shown)


def choose_source(
    backups: Sequence[Backup],
    source: str | None,
    source_exists: Callable[[str], bool],
    kind: str,
    language: str,
) -> str:
    """``--source``, or the only source that has backups (several: the admin must choose).

    ``kind`` is ``db`` or ``ami`` (the catalogue's ``cli.restore.kind.<kind>``).
    """
    sources = {b.source for b in backups}
    what, whats = say(f"cli.restore.kind.{kind}", language), say(f"cli.restore.kinds.{kind}", language)
    if source is not None:
        if source in sources:
            return source
        others = say("cli.restore.others", language, whats=whats, names=names(sources)) if sources else ""
        if source_exists(source):
            raise CliError(say("cli.restore.no_backup_of", language, what=what, source=source, others=others))
        raise UsageError(say("cli.restore.source_missing", language, what=what, source=source, others=others))
    if not sources:
        raise CliError(say("cli.restore.none_here", language, what=what))
    if len(sources) > 1:
        raise UsageError(say("cli.restore.several_sources", language, whats=whats, names=names(sources)))
    return next(iter(sources))


def latest(backups: Sequence[Backup], source: str, kind: str, language: str) -> Backup:
    mine = newest_first(b for b in backups if b.source == source)
    for backup in mine:
        if backup.usable:
            return backup
    newest = mine[0]
    raise CliError(
        say(
            "cli.restore.none_usable",
            language,
            what=say(f"cli.restore.kind.{kind}", language),
            source=source,
            id=newest.id,
            why=newest.why_not(language),
        )
    )


def check_explicit(backup: Backup, source: str | None, kind: str, language: str) -> None:
    this = say(f"cli.restore.this.{kind}", language)
    if source is not None and backup.source != source:
        raise UsageError(
            say(
                "cli.restore.other_source",
                language,
                this=this,
                id=backup.id,
                source=backup.source,
                wanted=source,
            )
        )
    if not backup.usable:
        raise CliError(
            say("cli.restore.not_usable", language, this=this, id=backup.id, why=backup.why_not(language))
        )


def not_ours(kind: str, backup_id: str, language: str) -> CliError:
    return CliError(
        say(
            "cli.restore.not_ours",
            language,
            this=say(f"cli.restore.this.{kind}", language),
            id=backup_id,
            tag=f"{MANAGED_BY_KEY}={MANAGED_BY_VALUE}",
        )
    )


def selection_tag(cli: Cli) -> SelectionTag:
    """The selection tag of the configuration (the default when there is no readable cdk.json)."""
    try:
        return cli.config.selection.tag
    except CliError:
        return DEFAULT_SELECTION


def wait_until(
    what: str,
    describe: Callable[[], tuple[str, Any]],
    done: str,
    failed: frozenset[str],
    *,
    poll: float,
    timeout_minutes: int,
    hint: str,
    language: str,
    reason: Callable[[Any], str] = lambda _: "",
) -> Any:
    """Poll ``describe`` (-> state, details) until ``done``, with a status line on stderr."""
    started = _now()
    deadline = started + timeout_minutes * 60
    out = Output()
    with out.errors.status(say("cli.restore.waiting", language, what=what, done=done)) as status:
        while True:
            state, details = describe()
            if state == done:
                return details
            if state in failed:
                why = reason(details)
                raise CliError(
                    say(
                        "cli.restore.failed_state",
                        language,
                        what=what,
                        state=state,
                        done=done,
                        why=f" ({why})" if why else "",
                        hint=hint,
                    )
                )
            now = _now()
            if now >= deadline:
                raise CliError(
                    say(
                        "cli.restore.timed_out",
                        language,
                        what=what,
                        state=state,
                        minutes=timeout_minutes,
                        hint=hint,
                    )
                )
            minutes, seconds = divmod(int(now - started), 60)
            status.update(
                say(
                    "cli.restore.waiting_so_far",
                    language,
                    what=what,
                    done=done,
                    state=state,
                    elapsed=f"{minutes}:{seconds:02d}",
                )
            )
            _sleep(min(poll, deadline - now))


def print_plan(out: Output, title: str, settings: dict[str, Any], language: str) -> None:
    out.line(title)
    labels = {key: say(f"cli.restore.setting.{key}", language) for key in settings}
    width = max([22, *(len(label) + 1 for label in labels.values())])
    for key, value in settings.items():
        if isinstance(value, bool):
            text = say("cli.restore.yes" if value else "cli.restore.no", language)
        elif isinstance(value, (list, tuple)):
            text = ", ".join(value) or "-"
        else:
            text = "-" if value is None else str(value)
        out.line(f"  {labels[key]:<{width}} {text}")


def print_steps(out: Output, steps: Sequence[str], language: str) -> None:
    out.line(say("cli.restore.next_steps", language))
    for number, step in enumerate(steps, 1):
        out.line(f"  {number}. {step}")


def security_groups_vpcs(ec2: EC2Client, ids: Sequence[str], language: str) -> dict[str, str]:
    try:
        groups = ec2.describe_security_groups(GroupIds=list(ids))["SecurityGroups"]
    except ClientError as err:
        if error_code(err) in (
            "InvalidGroup.NotFound",
            "InvalidGroupId.Malformed",
            "InvalidGroupId.NotFound",
        ):
            raise UsageError(say("cli.restore.groups_missing", language, ids=names(ids), error=err)) from None
        raise
    return {g["GroupId"]: g.get("VpcId", "") for g in groups}


def check_groups_in_vpc(ec2: EC2Client, groups: Sequence[str], vpc: str, where: str, language: str) -> None:
    """``where`` is a sentence part of the catalogue (``cli.restore.where_subnet``...)."""
    vpcs = security_groups_vpcs(ec2, groups, language)
    outside = sorted(g for g, v in vpcs.items() if vpc and v != vpc)
    if outside:
        raise UsageError(
            say("cli.restore.groups_outside", language, ids=", ".join(outside), vpc=vpc, where=where)
        )

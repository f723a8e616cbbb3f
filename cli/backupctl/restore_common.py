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
from typing import TYPE_CHECKING, Any, Final

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
from lambdas.common.settings import SelectionTag

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


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

    def why_not(self) -> str:
        """Why it cannot be restored, as the end of a sentence ("is still creating")."""
        if self.reading.gone:
            return self.reading.detail
        return self.reading.verify_detail()


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


def stamp(when: datetime) -> str:
    return "unknown time" if when == EPOCH else f"{when:%Y-%m-%d %H:%M} UTC"


def names(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def newest_usable_text(backups: Sequence[Backup], source: str | None) -> str:
    usable = [b for b in newest_first(backups) if b.usable and (source is None or b.source == source)]
    if not usable:
        return "there is no usable one" + (f" of {source}" if source else "")
    shown = ", ".join(f"{b.id} ({b.source}, {stamp(b.created)})" for b in usable[:SHOWN_ALTERNATIVES])
    return f"the newest usable {'is' if len(usable) == 1 else 'are'} {shown}"


def choose_source(
    backups: Sequence[Backup], source: str | None, source_exists: Callable[[str], bool], what: str
) -> str:
    """``--source``, or the only source that has backups (several: the admin must choose)."""
    sources = {b.source for b in backups}
    if source is not None:
        if source in sources:
            return source
        others = f" (schoolbackup has {what}s of {names(sources)})" if sources else ""
        if source_exists(source):
            raise CliError(f"There is no schoolbackup {what} of {source}{others}.")
        raise UsageError(f"{source} does not exist and has no schoolbackup {what}{others}.")
    if not sources:
        raise CliError(f"There is no schoolbackup {what} in this region: nothing to restore.")
    if len(sources) > 1:
        raise UsageError(
            f"schoolbackup has {what}s of several sources ({names(sources)}): choose one with --source."
        )
    return next(iter(sources))


def latest(backups: Sequence[Backup], source: str, what: str) -> Backup:
    mine = newest_first(b for b in backups if b.source == source)
    for backup in mine:
        if backup.usable:
            return backup
    newest = mine[0]
    raise CliError(
        f"No {what} of {source} is usable: the newest, {newest.id}, {newest.why_not()}; "
        "wait for it to finish or pass an older one explicitly."
    )


def check_explicit(backup: Backup, source: str | None, what: str) -> None:
    if source is not None and backup.source != source:
        raise UsageError(f"{first_upper(what)} {backup.id} is a backup of {backup.source}, not of {source}.")
    if not backup.usable:
        raise CliError(f"{first_upper(what)} {backup.id} {backup.why_not()}, so it cannot be restored.")


def first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def not_ours(what: str, backup_id: str) -> CliError:
    return CliError(
        f"{first_upper(what)} {backup_id} does not carry {MANAGED_BY_KEY}={MANAGED_BY_VALUE}: "
        "backupctl restores only what schoolbackup made."
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
    reason: Callable[[Any], str] = lambda _: "",
) -> Any:
    """Poll ``describe`` (-> state, details) until ``done``, with a status line on stderr."""
    started = _now()
    deadline = started + timeout_minutes * 60
    out = Output()
    with out.errors.status(f"Waiting for {what} to become {done} ...") as status:
        while True:
            state, details = describe()
            if state == done:
                return details
            if state in failed:
                why = reason(details)
                raise CliError(f"{what} is {state} instead of {done}{f' ({why})' if why else ''}: {hint}")
            now = _now()
            if now >= deadline:
                raise CliError(
                    f"{what} is still {state} after {timeout_minutes} minutes; it keeps going on its own: {hint}"
                )
            minutes, seconds = divmod(int(now - started), 60)
            status.update(f"Waiting for {what} to become {done}: {state}, {minutes}:{seconds:02d} so far ...")
            _sleep(min(poll, deadline - now))


def print_plan(out: Output, title: str, settings: dict[str, Any]) -> None:
    out.line(title)
    for key, value in settings.items():
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, (list, tuple)):
            text = ", ".join(value) or "-"
        else:
            text = "-" if value is None else str(value)
        out.line(f"  {key.replace('_', ' '):<22} {text}")


def print_steps(out: Output, steps: Sequence[str]) -> None:
    out.line("Next steps:")
    for number, step in enumerate(steps, 1):
        out.line(f"  {number}. {step}")


def security_groups_vpcs(ec2: EC2Client, ids: Sequence[str]) -> dict[str, str]:
    try:
        groups = ec2.describe_security_groups(GroupIds=list(ids))["SecurityGroups"]
    except ClientError as err:
        if error_code(err) in (
            "InvalidGroup.NotFound",
            "InvalidGroupId.Malformed",
            "InvalidGroupId.NotFound",
        ):
            raise UsageError(
                f"Not every security group of {names(ids)} exists in this region (AWS: {err})."
            ) from None
        raise
    return {g["GroupId"]: g.get("VpcId", "") for g in groups}


def check_groups_in_vpc(ec2: EC2Client, groups: Sequence[str], vpc: str, where: str) -> None:
    vpcs = security_groups_vpcs(ec2, groups)
    outside = sorted(g for g, v in vpcs.items() if vpc and v != vpc)
    if outside:
        raise UsageError(f"Security group(s) {', '.join(outside)} are not in {vpc}, the VPC of {where}.")

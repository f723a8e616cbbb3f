"""The week as the admin reads it: one model for the weekly mail and ``backupctl status`` (pure).

:class:`HealthReport` holds what the checks found; :func:`findings` turns it into the problems the
admin must act on, grouped by cause: one failed dump is one problem, and what follows from it (the
newest good dump is now too old, the alarms it raised) stands under it. Each problem says what to do
next and where (a backupctl command, a console link). The mail's counts are the number of problems
listed, nothing else. Every sentence comes from ``lambdas.common.messages``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from lambdas.common.contracts import (
    JOB_OF_KIND,
    KIND_AMI,
    KIND_DUMP,
    KIND_RDS,
    dump_log_group_name,
    job_resource_name,
)
from lambdas.common.issues import BACKUP_CAUSES, PRUNE_OVERDUE, Issue
from lambdas.common.messages import QUOTA_ALARM_PERCENT, alarm_description, capital, say

GOOD: Final = "good"
BAD: Final = "bad"
NONE: Final = "none"
STRIP_DAYS: Final = 30
QUOTA_PROBLEM_PERCENT: Final = QUOTA_ALARM_PERCENT
RESTORE_TEST_WINDOW: Final = timedelta(days=8)
VERIFY_SILENT_DAYS: Final = 3
DRILL_OVERDUE: Final = timedelta(days=214)  # half a year and a month: a drill that should have run

# The causes of the week's problems (a finding each).
BACKUP: Final = "backup"
PRUNE: Final = "prune"
RESTORE_FAILED: Final = "restore-failed"
RESTORE_MISSING: Final = "restore-missing"
RESTORE_OLD: Final = "restore-old"
QUOTA: Final = "quota"
UNCONFIRMED: Final = "unconfirmed"
SELECTION: Final = "selection"
VERIFY_SILENT: Final = "verify-silent"
ALARM: Final = "alarm"
IAM_NEW_HIGH: Final = "iam-new-high"
DRILL: Final = "drill"
OFFSITE: Final = "offsite"
OFFSITE_AGE_SUFFIX: Final = "-backup-age-offsite"  # <kind>-backup-age-offsite: the copies' dead-man alarms


@dataclass(frozen=True)
class KindStatus:
    kind: str
    ok: bool
    target_hours: int
    newest_good: str | None = None
    newest_good_time: datetime | None = None
    age_hours: float | None = None
    issues: tuple[Issue, ...] = ()
    kept: int | None = None
    policy_keeps: int | None = None
    strip: tuple[str, ...] = ()  # oldest first, one of GOOD/BAD/NONE per day, the last one today
    last_verified: datetime | None = None
    last_verify_ok: bool | None = None


@dataclass(frozen=True)
class SourceStatus:
    source: str
    is_database: bool
    kinds: tuple[KindStatus, ...]
    name: str = ""  # its Name tag

    @property
    def label(self) -> str:
        """``web (i-0abc...)``: what the admin calls it, with the id AWS uses beside it."""
        return f"{self.name} ({self.source})" if self.name else self.source


@dataclass(frozen=True)
class RestoreTestStatus:
    when: datetime
    passed: bool
    duration_seconds: float
    dump: str | None
    problems: tuple[str, ...] = ()
    record: str = ""  # its key in the bucket


@dataclass(frozen=True)
class AlarmEvent:
    """An alarm of the stack that went into ALARM; ``reason`` in plain words (:func:`alarm_reason`)."""

    name: str
    when: datetime
    reason: str
    still_in_alarm: bool | None = None  # None: not known
    times: int = 1  # how often it went off in the week (``when`` is the last time)


@dataclass(frozen=True)
class Quota:
    used: int
    limit: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.limit if self.limit else 100.0


@dataclass(frozen=True)
class IamFindingLine:
    kind: str
    principal: str
    detail: str  # English (the record's data)


@dataclass(frozen=True)
class IamReviewStatus:
    """The newest monthly IAM review (its record ``reports/iam/<YYYY-MM>.json``)."""

    month: str
    record: str
    counts: Mapping[str, int]
    high: tuple[IamFindingLine, ...] = ()
    new_high: tuple[IamFindingLine, ...] = ()  # high findings the month before did not have


@dataclass(frozen=True)
class DrillStatus:
    """The newest restore drill (its record ``reports/drills/<stamp>.json``)."""

    when: datetime  # when it started
    passed: bool
    rto_minutes: float | None  # None: the school was not restored
    rto_target_minutes: int
    record: str
    failed_phases: tuple[tuple[str, str], ...] = ()  # (phase, detail), the record's English data
    leftovers: tuple[str, ...] = ()
    error: str = ""

    @property
    def rto_met(self) -> bool:
        return self.rto_minutes is not None and self.rto_minutes <= self.rto_target_minutes

    @property
    def ok(self) -> bool:
        return self.passed and self.rto_met and not self.leftovers


@dataclass(frozen=True)
class HealthReport:
    generated_at: datetime
    language: str
    sources: tuple[SourceStatus, ...]
    restore_test: RestoreTestStatus | None
    alarms: tuple[AlarmEvent, ...]
    quota: Quota | None
    notes: tuple[str, ...] = field(default=())
    unconfirmed: tuple[str, ...] = ()  # alarm addresses not subscribed or not confirmed: alarms miss them
    timezone: str = "UTC"  # every time in the mail is shown in it
    selection_problems: tuple[str, ...] = ()  # listed ids that do not exist, nothing selected, ...
    offsite_problems: tuple[str, ...] = ()  # verify's problems of the offsite copies (one sentence each)
    offsite_region: str = ""
    selection_tag: str = "Backup=true"
    verify_silent_days: int = 0  # > 0: the daily check has not reported for that many days
    stack: str = "SchoolBackup"  # names of its functions and log groups, for the next steps
    region: str = ""  # for console links; none without it
    topic_arn: str = ""
    alarm_prefix: str = "SchoolBackup-"
    iam_review: IamReviewStatus | None = None  # None: no review recorded yet
    drill: DrillStatus | None = None  # None: no drill recorded yet
    drill_enabled: bool = False  # restore_drill.enabled: then an overdue drill is a problem

    @cached_property
    def _findings(self) -> tuple[Finding, ...]:
        return findings(self)  # once per report: the subject, the headline, the text and the HTML all ask

    def findings(self) -> tuple[Finding, ...]:
        return self._findings

    def problems(self) -> tuple[Finding, ...]:
        """The problems that need the admin now (what the counts count)."""
        return tuple(f for f in self.findings() if not f.resolved)

    def todo(self) -> list[str]:
        """Every open problem, one line each: its title and what is wrong."""
        return [f"{f.title}: {f.headline}" for f in self.problems()]

    @property
    def ok(self) -> bool:
        return not self.problems()


@dataclass(frozen=True)
class NextStep:
    text: str
    command: str = ""  # a backupctl command line
    link: str = ""  # the AWS console page to open


@dataclass(frozen=True)
class Finding:
    """One problem of the week: what is wrong, what follows from it, and what to do."""

    cause: str
    title: str
    headline: str
    consequences: tuple[str, ...] = ()
    next_step: NextStep | None = None
    resolved: bool = False  # an alarm of the week whose cause is fine again
    source: str = ""
    kind: str = ""


# --- console links ---------------------------------------------------------------------------------


def _console(region: str, path: str) -> str:
    return f"https://{region}.console.aws.amazon.com/{path}" if region else ""


def log_group_link(region: str, name: str) -> str:
    return _console(
        region, f"cloudwatch/home?region={region}#logsV2:log-groups/log-group/" + name.replace("/", "$252F")
    )


def function_link(region: str, function_name: str) -> str:
    return _console(region, f"lambda/home?region={region}#/functions/{function_name}?tab=monitoring")


def topic_link(region: str, topic_arn: str) -> str:
    return _console(region, f"sns/v3/home?region={region}#/topic/{topic_arn}") if topic_arn else ""


def state_machines_link(region: str) -> str:
    """The Step Functions console's list of state machines (the drill's is ``<stack>-restore-drill``)."""
    return _console(region, f"states/home?region={region}#/statemachines")


def alarm_link(region: str, alarm_name: str) -> str:
    return _console(region, f"cloudwatch/home?region={region}#alarmsV2:alarm/{quote(alarm_name, safe='')}")


# --- time and words --------------------------------------------------------------------------------


def local_time(when: datetime, zone: str) -> str:
    """``30.11.2026 01:30`` in the configured timezone (the mail's header names it)."""
    return f"{when.astimezone(ZoneInfo(zone)):%d.%m.%Y %H:%M}"


def local_day(when: datetime, zone: str) -> str:
    return f"{when.astimezone(ZoneInfo(zone)):%d.%m.%Y}"


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _kind_title(kind: str, label: str, language: str) -> str:
    return say("finding.title", language, kind=say(f"kind.{kind}", language), source=label)


# --- alarms: what fired them, in plain words ---------------------------------------------------------


def _base(name: str, prefix: str) -> str:
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name


def alarm_reason(name: str, prefix: str, new_state: Mapping[str, Any], language: str) -> str:  # noqa: PLR0911 - one return per kind of alarm
    """Why the alarm went off, in words, from its new state's data (never CloudWatch's template)."""
    base = _base(name, prefix)
    raw = new_state.get("stateReasonData") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = {}
    data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if not data:  # set by hand (aws cloudwatch set-alarm-state): a person's words, not the template
        return str(new_state.get("stateReason") or "") or say("reason.other", language)
    recent = [float(v) for v in data.get("recentDatapoints") or [] if isinstance(v, int | float)]
    threshold = data.get("threshold")
    limit = _number(float(threshold)) if isinstance(threshold, int | float) else "?"
    if base in ("RestoreTestFailed", "DrillFailed", "DrillRtoExceeded"):
        return say(f"reason.{base}", language)
    if not recent:
        return say("reason.no_data", language)
    worst = max(recent)
    if base == "VerificationFailed":
        return say("reason.VerificationFailed", language, value=_number(worst))
    if base == "RdsSnapshotQuota":
        return say("reason.RdsSnapshotQuota", language, value=_number(worst), threshold=limit)
    if base in ("IamNewHighFindings", "DrillLeftovers"):
        return say(f"reason.{base}", language, value=_number(worst))
    copied = base.removesuffix(OFFSITE_AGE_SUFFIX)
    if copied in JOB_OF_KIND and base.endswith(OFFSITE_AGE_SUFFIX):
        what = say(f"alarm.what.{copied}", language)
        return say("reason.offsite_backup_age", language, what=what, value=_number(worst), threshold=limit)
    if base == "ReplicationFailed":
        return say("reason.ReplicationFailed", language, value=_number(sum(recent)))
    kind = base.removesuffix("-backup-age")
    if kind in JOB_OF_KIND and base.endswith("-backup-age"):
        what = say(f"alarm.what.{kind}", language)
        return say("reason.backup_age", language, what=what, value=_number(worst), threshold=limit)
    if base.endswith("-errors"):
        return say("reason.errors", language, job=base.removesuffix("-errors"), value=_number(sum(recent)))
    return say("reason.other", language)


def _alarm_line(alarm: AlarmEvent, zone: str, language: str) -> str:
    when = local_time(alarm.when, zone)
    if alarm.times > 1:
        return say(
            "finding.alarm_times", language, name=alarm.name, n=alarm.times, when=when, reason=alarm.reason
        )
    return say("finding.alarm", language, name=alarm.name, when=when, reason=alarm.reason)


# The stack's alarms by name (without the prefix) and the problems each belongs to.
_TARGETS_BY_NAME: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    "VerificationFailed": ((BACKUP, ""), (PRUNE, ""), (SELECTION, "")),
    "RestoreTestFailed": ((RESTORE_FAILED, ""),),
    "RdsSnapshotQuota": ((QUOTA, ""),),
    "IamNewHighFindings": ((IAM_NEW_HIGH, ""),),
    "DrillFailed": ((DRILL, ""),),
    "DrillRtoExceeded": ((DRILL, ""),),
    "DrillLeftovers": ((DRILL, ""),),
    "ReplicationFailed": ((OFFSITE, ""),),
}
# A job's <job>-errors alarm and the problems its failure leads to.
_TARGETS_BY_JOB: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    "rds_snapshot": ((BACKUP, KIND_RDS),),
    "ami_backup": ((BACKUP, KIND_AMI),),
    "prune": ((PRUNE, ""), (QUOTA, "")),
    "restore_test": ((RESTORE_FAILED, ""), (RESTORE_MISSING, ""), (RESTORE_OLD, "")),
    "verify": ((VERIFY_SILENT, ""),),
    "drill": ((DRILL, ""),),
    "offsite_copy": ((OFFSITE, ""),),
}


def _alarm_targets(base: str) -> tuple[tuple[str, str], ...]:
    """Which problems an alarm belongs to: (cause, kind) pairs, kind "" for any."""
    if base in _TARGETS_BY_NAME:
        return _TARGETS_BY_NAME[base]
    if base.endswith(OFFSITE_AGE_SUFFIX):
        return ((OFFSITE, ""),)
    if base.endswith("-backup-age"):
        return ((BACKUP, base.removesuffix("-backup-age")),)
    if base.endswith("-errors"):
        return _TARGETS_BY_JOB.get(base.removesuffix("-errors"), ())
    return ()


def _alarm_next_step(report: HealthReport, base: str, name: str) -> NextStep | None:
    hours = {k.kind: k.target_hours for s in report.sources for k in s.kinds}
    text = alarm_description(base, report.language, stack=report.stack, hours=hours)
    return NextStep(text, link=alarm_link(report.region, name)) if text else None


# --- the problems of the week ------------------------------------------------------------------------


def _backup_next_step(report: HealthReport, kind: str) -> NextStep:
    lang, region = report.language, report.region
    if kind == KIND_DUMP:
        group = dump_log_group_name(report.stack)
        return NextStep(
            say("next.dump", lang, log_group=group), "backupctl run dump", log_group_link(region, group)
        )
    job = JOB_OF_KIND[kind]
    function = job_resource_name(report.stack, job)
    return NextStep(say("next.job", lang, job=job), f"backupctl run {job}", function_link(region, function))


def _source_findings(report: HealthReport, source: SourceStatus) -> list[Finding]:
    lang, found = report.language, []
    for k in source.kinds:
        title = _kind_title(k.kind, source.label, lang)
        backup = sorted(
            (i for i in k.issues if i.cause in BACKUP_CAUSES), key=lambda i: BACKUP_CAUSES.index(i.cause)
        )
        if backup:
            lines = [capital(i.text.render(lang)) for i in backup]
            found.append(
                Finding(
                    BACKUP,
                    title,
                    lines[0],
                    tuple(lines[1:]),
                    _backup_next_step(report, k.kind),
                    source=source.source,
                    kind=k.kind,
                )
            )
        prune = [capital(i.text.render(lang)) for i in k.issues if i.cause == PRUNE_OVERDUE]
        if k.kept is not None and k.policy_keeps is not None and k.kept > k.policy_keeps:
            prune.append(say("finding.too_many", lang, kept=k.kept, policy=k.policy_keeps))
        if prune:
            step = NextStep(
                say("next.prune", lang),
                "backupctl prune --dry-run",
                function_link(report.region, job_resource_name(report.stack, "prune")),
            )
            found.append(
                Finding(PRUNE, title, prune[0], tuple(prune[1:]), step, source=source.source, kind=k.kind)
            )
    return found


def _restore_finding(report: HealthReport) -> Finding | None:
    lang, zone, r = report.language, report.timezone, report.restore_test
    title = say("finding.restore_title", lang)
    command = "backupctl run restore_test"
    link = function_link(report.region, job_resource_name(report.stack, "restore_test"))
    if r is None:
        step = NextStep(say("next.restore_missing", lang), command, link)
        return Finding(RESTORE_MISSING, title, say("finding.restore_missing", lang), (), step)
    if not r.passed:
        headline = say(
            "finding.restore_failed",
            lang,
            when=local_time(r.when, zone),
            seconds=duration(r.duration_seconds),
        )
        record = r.record or "reports/restore-tests/"
        step = NextStep(say("next.restore_failed", lang, record=record), command, link)
        # The record's findings are in English (restore_test writes them); another language names the record.
        details = (
            tuple(capital(p) for p in r.problems)
            if lang == "en"
            else (say("finding.restore_details", lang, record=record),)
        )
        return Finding(RESTORE_FAILED, title, headline, details, step)
    if report.generated_at - r.when > RESTORE_TEST_WINDOW:
        step = NextStep(say("next.restore_missing", lang), command, link)
        return Finding(
            RESTORE_OLD, title, say("finding.restore_old", lang, when=local_day(r.when, zone)), (), step
        )
    return None


def _other_findings(report: HealthReport) -> list[Finding]:
    lang, found = report.language, []
    restore = _restore_finding(report)
    if restore is not None:
        found.append(restore)
    q = report.quota
    if q is not None and q.percent > QUOTA_PROBLEM_PERCENT:
        found.append(
            Finding(
                QUOTA,
                say("finding.quota_title", lang),
                say("finding.quota", lang, used=q.used, limit=q.limit, percent=f"{q.percent:.0f}"),
                (),
                NextStep(say("next.quota", lang), "backupctl prune --dry-run"),
            )
        )
    if report.selection_problems:
        first, *rest = report.selection_problems
        step = NextStep(say("next.selection", lang, tag=report.selection_tag), "backupctl status")
        found.append(Finding(SELECTION, say("finding.selection_title", lang), first, tuple(rest), step))
    if report.offsite_problems:  # one problem for the copies; each sentence names source, kind and region
        first, *rest = report.offsite_problems
        step = NextStep(say("next.offsite", lang), "backupctl run verify")
        title = say("finding.offsite_title", lang, region=report.offsite_region)
        found.append(Finding(OFFSITE, title, first, tuple(rest), step))
    if report.verify_silent_days > 0:
        step = NextStep(
            say("next.verify", lang),
            "backupctl run verify",
            function_link(report.region, job_resource_name(report.stack, "verify")),
        )
        headline = say("finding.verify_silent", lang, days=report.verify_silent_days)
        found.append(Finding(VERIFY_SILENT, say("finding.verify_silent_title", lang), headline, (), step))
    for extra in (_iam_finding(report), _drill_finding(report)):
        if extra is not None:
            found.append(extra)
    for address in report.unconfirmed:
        found.append(
            Finding(
                UNCONFIRMED,
                say("finding.unconfirmed_title", lang, address=address),
                say("finding.unconfirmed", lang, address=address),
                (),
                NextStep(
                    say("next.unconfirmed", lang),
                    "backupctl status",
                    topic_link(report.region, report.topic_arn),
                ),
            )
        )
    return found


def iam_line(line: IamFindingLine, language: str) -> str:
    """``Administrator access – user/frank: <detail>``; the detail (English data) only in English."""
    kind = say(f"iam.kind.{line.kind}", language)
    text = say("iam.line", language, kind=kind, principal=line.principal.split(":", 5)[-1])
    return f"{text}: {line.detail}" if language == "en" and line.detail else text


def _iam_finding(report: HealthReport) -> Finding | None:
    """High findings of the newest IAM review that the month before did not have: one problem."""
    review, lang = report.iam_review, report.language
    if review is None or not review.new_high:
        return None
    n = len(review.new_high)
    headline = say("iam.new_high_one", lang) if n == 1 else say("iam.new_high_many", lang, n=n)
    lines = tuple(
        f"{iam_line(f, lang)}. {say('mail.what_to_do', lang)}: {say(f'iam.todo.{f.kind}', lang)}"
        for f in review.new_high
    )
    step = NextStep(
        say("next.iam", lang),
        "backupctl iam-review --last",
        function_link(report.region, job_resource_name(report.stack, "iam_review")),
    )
    return Finding(IAM_NEW_HIGH, say("iam.finding_title", lang, month=review.month), headline, lines, step)


def _drill_finding(report: HealthReport) -> Finding | None:
    """The newest drill failed, was slower than the target or left resources behind; or, while the drill
    is switched on, the newest is older than half a year and a month (a drill that should have run)."""
    lang, zone, drill = report.language, report.timezone, report.drill
    title = say("week.drill.title", lang)
    step = NextStep(
        say("next.drill", lang),
        "backupctl drill status",
        state_machines_link(report.region),
    )
    if drill is None:  # a school that just switched it on waits for its first; the summary says so
        return None
    if report.generated_at - drill.when > DRILL_OVERDUE:
        if not report.drill_enabled:  # switched off since: its old record is history, not a problem
            return None
        headline = say("week.drill.overdue", lang, when=local_day(drill.when, zone))
        return Finding(DRILL, title, headline, (), replace(step, command="backupctl drill start"))
    if drill.ok:
        return None
    when = local_time(drill.when, zone)
    if not drill.passed:
        headline = say("week.drill.failed", lang, when=when)
    elif not drill.rto_met:
        headline = say(
            "week.drill.slow",
            lang,
            when=when,
            rto=_number(drill.rto_minutes or 0),
            target=drill.rto_target_minutes,
        )
    else:
        headline = say("week.drill.left", lang, when=when)
    lines = []
    if lang == "en":  # the record's details are English data; another language names the record
        lines += [f"{capital(name)}: {detail}" for name, detail in drill.failed_phases]
        lines += [f"Why it stopped: {drill.error}"] if drill.error else []
    elif drill.failed_phases or drill.error:
        lines.append(say("week.drill.details", lang, record=drill.record))
    if drill.leftovers:
        lines.append(say("drill.leftovers", lang, ids=", ".join(drill.leftovers)))
    return Finding(DRILL, title, headline, tuple(lines), step)


def _attach_alarms(report: HealthReport, found: list[Finding]) -> list[Finding]:
    """Each alarm goes under the problems it belongs to; one that belongs to none is a problem itself."""
    lang, zone = report.language, report.timezone
    extra: dict[int, list[str]] = {}
    alone: list[Finding] = []
    for alarm in report.alarms:
        base = _base(alarm.name, report.alarm_prefix)
        targets = _alarm_targets(base)
        hits = [
            i for i, f in enumerate(found) if any(f.cause == c and (not k or f.kind == k) for c, k in targets)
        ]
        line = _alarm_line(alarm, zone, lang)
        for i in hits[:1]:  # under the first problem it belongs to: said once
            extra.setdefault(i, []).append(line)
        if hits:
            continue
        state = {True: "finding.alarm_still", False: "finding.alarm_ok_again", None: ""}[alarm.still_in_alarm]
        alone.append(
            Finding(
                ALARM,
                say("finding.alarm_title", lang, name=alarm.name),
                line,
                (say(state, lang),) if state else (),
                _alarm_next_step(report, base, alarm.name),
                resolved=alarm.still_in_alarm is False,
            )
        )
    merged = [
        Finding(
            f.cause,
            f.title,
            f.headline,
            (*f.consequences, *extra.get(i, [])),
            f.next_step,
            f.resolved,
            f.source,
            f.kind,
        )
        for i, f in enumerate(found)
    ]
    return merged + alone


def findings(report: HealthReport) -> tuple[Finding, ...]:
    """The problems of the week, grouped by cause; open ones first, then alarms that are fine again."""
    found = [f for s in report.sources for f in _source_findings(report, s)]
    found += _other_findings(report)
    everything = _attach_alarms(report, found)
    return tuple(sorted(everything, key=lambda f: f.resolved))


def merge_alarm_events(events: Sequence[AlarmEvent], in_alarm: set[str] | None) -> tuple[AlarmEvent, ...]:
    """One entry per alarm (newest time, how often), oldest first; ``in_alarm`` names those still in ALARM."""
    by_name: dict[str, AlarmEvent] = {}
    for event in sorted(events, key=lambda e: e.when):
        earlier = by_name.get(event.name)
        times = earlier.times + event.times if earlier else event.times
        still = None if in_alarm is None else event.name in in_alarm
        by_name[event.name] = AlarmEvent(event.name, event.when, event.reason, still, times)
    return tuple(sorted(by_name.values(), key=lambda e: e.when))


def strip_dates(generated_at: datetime, days: int = STRIP_DAYS) -> tuple[str, ...]:
    """``dd.mm.`` of each day of the strip, oldest first (UTC days, as verify's metric counts them)."""
    return tuple(
        f"{(generated_at.astimezone(UTC) - timedelta(days=offset)):%d.%m.}"
        for offset in range(days - 1, -1, -1)
    )

"""The weekly health report as data, and its rendering to plain text and HTML (pure functions).

Every value that reaches HTML goes through ``html.escape``. Texts exist in English and German.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from lambdas.common.contracts import KIND_AMI, KIND_DUMP, KIND_RDS

GOOD: Final = "good"
BAD: Final = "bad"
NONE: Final = "none"
STRIP_DAYS: Final = 30
STRIP_CHAR: Final = {GOOD: "■", BAD: "□", NONE: "·"}
STRIP_COLOR: Final = {GOOD: "#2e7d32", BAD: "#c62828", NONE: "#d0d0d0"}

TEXTS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "title": "schoolbackup weekly report",
        "times_in": "All times in {zone}.",
        "all_ok": "Everything is fine: every backup is there, fresh and checked.",
        "attention": "Attention: {n} thing(s) need you. Details below.",
        "todo": "What needs your attention",
        "server": "Server",
        "database": "Database",
        "newest": "newest {when}, {age} old (target: at most {target})",
        "none": "no good backup found (target: at most {target})",
        "ok": "OK",
        "problem": "PROBLEM",
        "strip": "last 30 days",
        "legend_good": "checked and good",
        "legend_bad": "problem",
        "legend_none": "not checked",
        "kept": "kept: {kept} (the retention policy keeps {policy})",
        "kept_too_many": "kept: {kept}, but the retention policy keeps only {policy}: is the prune job running?",
        "last_verify": "last check: {when}, {result}",
        "passed": "passed",
        "failed": "failed",
        "restore": "Restore test",
        "restore_ok": "{when}: passed in {seconds} (dump {dump})",
        "restore_bad": "{when}: FAILED after {seconds}",
        "restore_none": "no restore test was recorded",
        "unconfirmed": (
            "{address} gets no alarm: its subscription to the alarm topic is not confirmed. Click the link in "
            'the mail "AWS Notification - Subscription Confirmation" (or subscribe the address again).'
        ),
        "quota": "Database snapshot quota",
        "quota_value": "{used} of {limit} used ({percent} %)",
        "quota_unknown": "could not be read",
        "alarms": "Alarms this week",
        "alarms_none": "none",
        "notes": "Notes",
        "hours": "{n} hours",
        "days": "{n} days",
        "footer": "Sent every Monday by schoolbackup. Alarms are sent at once, by a separate e-mail.",
        KIND_DUMP: "Files and database dump",
        KIND_RDS: "Database snapshot",
        KIND_AMI: "Server image (AMI)",
    },
    "de": {
        "title": "schoolbackup Wochenbericht",
        "times_in": "Alle Zeiten in {zone}.",
        "all_ok": "Alles in Ordnung: Jede Sicherung ist vorhanden, aktuell und geprüft.",
        "attention": "Achtung: {n} Punkt(e) brauchen Sie. Einzelheiten unten.",
        "todo": "Was Sie tun sollten",
        "server": "Server",
        "database": "Datenbank",
        "newest": "neueste {when}, {age} alt (Ziel: höchstens {target})",
        "none": "keine gute Sicherung gefunden (Ziel: höchstens {target})",
        "ok": "OK",
        "problem": "PROBLEM",
        "strip": "letzte 30 Tage",
        "legend_good": "geprüft und gut",
        "legend_bad": "Problem",
        "legend_none": "nicht geprüft",
        "kept": "aufbewahrt: {kept} (laut Aufbewahrungsregel {policy})",
        "kept_too_many": "aufbewahrt: {kept}, laut Aufbewahrungsregel nur {policy}: läuft das Aufräumen (prune)?",
        "last_verify": "letzte Prüfung: {when}, {result}",
        "passed": "bestanden",
        "failed": "fehlgeschlagen",
        "restore": "Wiederherstellungstest",
        "restore_ok": "{when}: bestanden in {seconds} (Dump {dump})",
        "restore_bad": "{when}: FEHLGESCHLAGEN nach {seconds}",
        "restore_none": "kein Wiederherstellungstest aufgezeichnet",
        "unconfirmed": (
            "{address} erhält keine Alarme: das Abonnement des Alarm-Themas ist nicht bestätigt. Bitte den Link "
            "in der Mail «AWS Notification - Subscription Confirmation» anklicken (oder die Adresse neu eintragen)."
        ),
        "quota": "Kontingent für Datenbank-Snapshots",
        "quota_value": "{used} von {limit} belegt ({percent} %)",
        "quota_unknown": "konnte nicht gelesen werden",
        "alarms": "Alarme dieser Woche",
        "alarms_none": "keine",
        "notes": "Hinweise",
        "hours": "{n} Stunden",
        "days": "{n} Tage",
        "footer": "Jeden Montag von schoolbackup verschickt. Alarme kommen sofort, mit einer eigenen E-Mail.",
        KIND_DUMP: "Datei- und Datenbank-Dump",
        KIND_RDS: "Datenbank-Snapshot",
        KIND_AMI: "Server-Abbild (AMI)",
    },
}


@dataclass(frozen=True)
class KindStatus:
    kind: str
    ok: bool
    target_hours: int
    newest_good: str | None = None
    newest_good_time: datetime | None = None
    age_hours: float | None = None
    problems: tuple[str, ...] = ()
    kept: int | None = None
    policy_keeps: int | None = None
    strip: tuple[str, ...] = ()  # oldest first, one of GOOD/BAD/NONE per day
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


@dataclass(frozen=True)
class AlarmEvent:
    name: str
    when: datetime
    reason: str


@dataclass(frozen=True)
class Quota:
    used: int
    limit: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.limit if self.limit else 100.0


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

    def todo(self) -> list[str]:
        """Every problem, in plain sentences."""
        items = [p for s in self.sources for k in s.kinds for p in k.problems]
        t = TEXTS[self.language]
        for s in self.sources:
            for k in s.kinds:
                if k.kept is not None and k.policy_keeps is not None and k.kept > k.policy_keeps:
                    items.append(
                        f"{t[k.kind]} {s.source}: "
                        + t["kept_too_many"].format(kept=k.kept, policy=k.policy_keeps)
                    )
        if self.restore_test is None:
            items.append(f"{t['restore']}: {t['restore_none']}.")
        elif not self.restore_test.passed:
            items.extend(self.restore_test.problems or (f"{t['restore']}: {t['failed']}.",))
        if self.quota is not None and self.quota.percent > 80:
            items.append(f"{t['quota']}: " + _quota(self.quota, t) + ".")
        items += [t["unconfirmed"].format(address=a) for a in self.unconfirmed]
        return items

    @property
    def ok(self) -> bool:
        return not self.todo() and not self.alarms


def _day(report: HealthReport) -> str:
    return f"{report.generated_at.astimezone(ZoneInfo(report.timezone)):%d.%m.%Y}"


def _when(when: datetime, zone: str) -> str:
    """A time as the admin reads it: in the configured timezone (the header of the mail names it)."""
    return f"{when.astimezone(ZoneInfo(zone)):%d.%m.%Y %H:%M}"


def _age(hours: float, t: dict[str, str]) -> str:
    if hours >= 48:
        return t["days"].format(n=f"{hours / 24:.1f}".rstrip("0").rstrip("."))
    return t["hours"].format(n=f"{hours:.0f}")


def _seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _quota(quota: Quota, t: dict[str, str]) -> str:
    return t["quota_value"].format(used=quota.used, limit=quota.limit, percent=f"{quota.percent:.0f}")


def subject(report: HealthReport) -> str:
    t = TEXTS[report.language]
    status = (
        t["all_ok"].split(":")[0]
        if report.ok
        else t["attention"].format(n=len(report.todo()) + len(report.alarms)).split(".")[0]
    )
    return f"{t['title']} {_day(report)}: {status}"[:100]


def _kind_state(k: KindStatus, t: dict[str, str], zone: str) -> str:
    """``newest 27.11.2026 04:30, 3 hours old (target: at most 26 hours)``, or that there is none."""
    target = _age(k.target_hours, t)
    if k.newest_good_time is not None and k.age_hours is not None:
        return t["newest"].format(
            when=_when(k.newest_good_time, zone), age=_age(k.age_hours, t), target=target
        )
    return t["none"].format(target=target)


def _kind_lines(k: KindStatus, t: dict[str, str], zone: str) -> list[str]:
    state = _kind_state(k, t, zone)
    lines = [f"  {t[k.kind]}: {state}  [{t['ok'] if k.ok else t['problem']}]"]
    if k.strip:
        lines.append(f"    {t['strip']}: " + "".join(STRIP_CHAR[d] for d in k.strip))
    if k.last_verified is not None:
        result = t["passed"] if k.last_verify_ok else t["failed"]
        lines.append("    " + t["last_verify"].format(when=f"{k.last_verified:%d.%m.%Y}", result=result))
    if k.kept is not None and k.policy_keeps is not None:
        key = "kept_too_many" if k.kept > k.policy_keeps else "kept"
        lines.append("    " + t[key].format(kept=k.kept, policy=k.policy_keeps))
    return lines


def _restore_line(r: RestoreTestStatus | None, t: dict[str, str], zone: str) -> str:
    if r is None:
        return t["restore_none"]
    if r.passed:
        return t["restore_ok"].format(
            when=_when(r.when, zone), seconds=_seconds(r.duration_seconds), dump=r.dump or "-"
        )
    return t["restore_bad"].format(when=_when(r.when, zone), seconds=_seconds(r.duration_seconds))


def render_text(report: HealthReport) -> str:
    t = TEXTS[report.language]
    todo = report.todo()
    out = [f"{t['title']} – {_day(report)}", t["times_in"].format(zone=report.timezone), ""]
    out.append(t["all_ok"] if report.ok else t["attention"].format(n=len(todo) + len(report.alarms)))
    if todo:
        out += ["", t["todo"] + ":", *(f" - {item}" for item in todo)]
    for s in report.sources:
        out += ["", f"{t['database'] if s.is_database else t['server']} {s.label}"]
        for k in s.kinds:
            out += _kind_lines(k, t, report.timezone)
    legend = "   ".join(f"{STRIP_CHAR[state]} {t['legend_' + state]}" for state in (GOOD, BAD, NONE))
    out += ["", f"    ({legend})", ""]
    out.append(f"{t['restore']}: {_restore_line(report.restore_test, t, report.timezone)}")
    out.append(f"{t['quota']}: {_quota(report.quota, t) if report.quota else t['quota_unknown']}")
    out.append(f"{t['alarms']}: {t['alarms_none'] if not report.alarms else ''}".rstrip())
    out += [f" - {_when(a.when, report.timezone)} {a.name}: {a.reason}" for a in report.alarms]
    if report.notes:
        out += ["", t["notes"] + ":", *(f" - {n}" for n in report.notes)]
    out += ["", t["footer"], ""]
    return "\n".join(out)


_E = html.escape
_CELL = "padding:6px 10px;border-bottom:1px solid #e6e6e6;vertical-align:top;"


def _badge(ok: bool, t: dict[str, str]) -> str:
    color = "#2e7d32" if ok else "#c62828"
    return (
        f'<span style="display:inline-block;padding:2px 8px;border-radius:10px;background:{color};'
        f'color:#fff;font-size:12px;font-weight:bold;">{_E(t["ok"] if ok else t["problem"])}</span>'
    )


def _strip_html(strip: tuple[str, ...]) -> str:
    cells = "".join(
        f'<td title="{_E(state)}" style="width:11px;height:14px;padding:0;background:{STRIP_COLOR[state]};'
        'border:1px solid #fff;"></td>'
        for state in strip
    )
    return f'<table role="presentation" style="border-collapse:collapse;margin-top:4px;"><tr>{cells}</tr></table>'


def _kind_html(k: KindStatus, t: dict[str, str], zone: str) -> str:
    state = _kind_state(k, t, zone)
    extra: list[str] = []
    if k.last_verified is not None:
        result = t["passed"] if k.last_verify_ok else t["failed"]
        extra.append(_E(t["last_verify"].format(when=f"{k.last_verified:%d.%m.%Y}", result=result)))
    if k.kept is not None and k.policy_keeps is not None:
        key = "kept_too_many" if k.kept > k.policy_keeps else "kept"
        style = ' style="color:#c62828;"' if key == "kept_too_many" else ""
        extra.append(f"<span{style}>{_E(t[key].format(kept=k.kept, policy=k.policy_keeps))}</span>")
    problems = "".join(f'<div style="color:#c62828;margin-top:4px;">{_E(p)}</div>' for p in k.problems)
    return (
        f'<tr><td style="{_CELL}width:190px;"><b>{_E(t[k.kind])}</b><br>{_badge(k.ok, t)}</td>'
        f'<td style="{_CELL}">{_E(state)}{problems}'
        f'<div style="color:#666;font-size:12px;margin-top:4px;">{"<br>".join(extra)}</div>'
        f"{_strip_html(k.strip) if k.strip else ''}</td></tr>"
    )


def render_html(report: HealthReport) -> str:
    t = TEXTS[report.language]
    todo = report.todo()
    color = "#2e7d32" if report.ok else "#c62828"
    headline = t["all_ok"] if report.ok else t["attention"].format(n=len(todo) + len(report.alarms))
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{_E(report.language)}"><head><meta charset="utf-8">',
        f"<title>{_E(subject(report))}</title></head>",
        '<body style="margin:0;padding:16px;background:#f4f5f7;font-family:Arial,Helvetica,sans-serif;'
        'color:#222;font-size:14px;line-height:1.45;">',
        '<div style="max-width:760px;margin:0 auto;background:#fff;border-radius:8px;padding:20px 24px;">',
        f'<h1 style="font-size:20px;margin:0 0 4px 0;">{_E(t["title"])}</h1>',
        f'<div style="color:#666;margin-bottom:14px;">{_E(_day(report))} · '
        f"{_E(t['times_in'].format(zone=report.timezone))}</div>",
        f'<div style="padding:12px 14px;border-radius:6px;background:{color};color:#fff;font-size:16px;'
        f'font-weight:bold;">{_E(headline)}</div>',
    ]
    if todo:
        items = "".join(f'<li style="margin:4px 0;">{_E(item)}</li>' for item in todo)
        parts.append(
            f'<h2 style="font-size:16px;margin:18px 0 6px 0;">{_E(t["todo"])}</h2><ul style="margin:0;padding-left:20px;">{items}</ul>'
        )
    for s in report.sources:
        label = t["database"] if s.is_database else t["server"]
        rows = "".join(_kind_html(k, t, report.timezone) for k in s.kinds)
        parts.append(
            f'<h2 style="font-size:16px;margin:20px 0 6px 0;">{_E(label)} {_E(s.name)} <code>{_E(s.source)}</code></h2>'
            f'<table role="presentation" style="border-collapse:collapse;width:100%;">{rows}</table>'
        )
    legend = "".join(
        f'<span style="display:inline-block;width:11px;height:11px;background:{STRIP_COLOR[state]};'
        f'margin:0 4px 0 10px;"></span>{_E(label)}'
        for state, label in ((s, t["legend_" + s]) for s in (GOOD, BAD, NONE))
    )
    parts.append(f'<div style="color:#666;font-size:12px;margin-top:8px;">{_E(t["strip"])}: {legend}</div>')
    quota = _quota(report.quota, t) if report.quota else t["quota_unknown"]
    alarms = (
        "".join(
            f"<li>{_E(_when(a.when, report.timezone))} <b>{_E(a.name)}</b>: {_E(a.reason)}</li>"
            for a in report.alarms
        )
        if report.alarms
        else f"<li>{_E(t['alarms_none'])}</li>"
    )
    restore_ok = report.restore_test is not None and report.restore_test.passed
    parts.append(
        '<table role="presentation" style="border-collapse:collapse;width:100%;margin-top:18px;">'
        f'<tr><td style="{_CELL}width:190px;"><b>{_E(t["restore"])}</b><br>{_badge(restore_ok, t)}</td>'
        f'<td style="{_CELL}">{_E(_restore_line(report.restore_test, t, report.timezone))}</td></tr>'
        f'<tr><td style="{_CELL}"><b>{_E(t["quota"])}</b></td><td style="{_CELL}">{_E(quota)}</td></tr>'
        f'<tr><td style="{_CELL}"><b>{_E(t["alarms"])}</b><br>{_badge(not report.alarms, t)}</td>'
        f'<td style="{_CELL}"><ul style="margin:0;padding-left:18px;">{alarms}</ul></td></tr></table>'
    )
    if report.notes:
        notes = "".join(f"<li>{_E(n)}</li>" for n in report.notes)
        parts.append(f'<h2 style="font-size:16px;margin:18px 0 6px 0;">{_E(t["notes"])}</h2><ul>{notes}</ul>')
    parts.append(
        f'<p style="color:#888;font-size:12px;margin-top:20px;">{_E(t["footer"])}</p></div></body></html>'
    )
    return "\n".join(parts)

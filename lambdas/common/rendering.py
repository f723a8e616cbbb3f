"""The weekly health report rendered to plain text and HTML (pure functions over lambdas.common.week).

The plain text is what most schools get (through the alarm topic); it reads on its own. The HTML is
responsive (one column, nothing wider than a phone's 390 px), marks states with words and shapes as
well as colours (blue and vermillion, readable for colour-blind readers), and escapes every value.
Every word comes from lambdas.common.messages.
"""

from __future__ import annotations

import html
from typing import Final

from lambdas.common.messages import say
from lambdas.common.week import (
    BAD,
    GOOD,
    NONE,
    STRIP_DAYS,
    AlarmEvent,
    Finding,
    HealthReport,
    IamReviewStatus,
    KindStatus,
    Quota,
    RestoreTestStatus,
    SourceStatus,
    duration,
    iam_line,
    local_day,
    local_time,
    strip_dates,
)

__all__ = [
    "BAD",
    "GOOD",
    "NONE",
    "STRIP_DAYS",
    "AlarmEvent",
    "HealthReport",
    "KindStatus",
    "Quota",
    "RestoreTestStatus",
    "SourceStatus",
    "findings_text",
    "render_html",
    "render_text",
    "subject",
]

STRIP_CHAR: Final = {GOOD: "■", BAD: "□", NONE: "·"}
# Okabe-Ito blue and a dark vermillion: told apart with every common colour-vision deficiency, and
# white text on either has a contrast above 4.5:1.
COLOR: Final = {GOOD: "#0b5d96", BAD: "#b23c00", NONE: "#c9c9c9"}


def _age(hours: float, lang: str) -> str:
    if hours >= 48:
        return say("mail.days", lang, n=f"{hours / 24:.1f}".rstrip("0").rstrip("."))
    if round(hours) == 1:
        return say("mail.hour", lang)
    return say("mail.hours", lang, n=f"{hours:.0f}")


def _quota(quota: Quota, lang: str) -> str:
    return say("mail.quota_value", lang, used=quota.used, limit=quota.limit, percent=f"{quota.percent:.0f}")


def headline(report: HealthReport) -> str:
    n = len(report.problems())
    if n == 0:
        return say("mail.all_ok", report.language)
    return say("mail.attention_one" if n == 1 else "mail.attention_many", report.language, n=n)


def subject(report: HealthReport) -> str:
    lang, n = report.language, len(report.problems())
    solved = sum(1 for f in report.findings() if f.resolved)
    status = (
        (say("mail.subject_solved", lang, n=solved) if solved else say("mail.subject_ok", lang))
        if n == 0
        else say("mail.subject_one" if n == 1 else "mail.subject_many", lang, n=n)
    )
    return f"{say('mail.title', lang)} {local_day(report.generated_at, report.timezone)}: {status}"[:100]


def _kind_state(k: KindStatus, lang: str, zone: str) -> str:
    """``newest 27.11.2026 04:30, 3 hours old (target: at most 26 hours)``, or that there is none."""
    target = _age(k.target_hours, lang)
    if k.newest_good_time is not None and k.age_hours is not None:
        return say(
            "mail.newest",
            lang,
            when=local_time(k.newest_good_time, zone),
            age=_age(k.age_hours, lang),
            target=target,
        )
    return say("mail.none", lang, target=target)


def _strip_summary(report: HealthReport, k: KindStatus) -> str:
    lang = report.language
    dates = strip_dates(report.generated_at, len(k.strip))
    good = sum(1 for d in k.strip if d == GOOD)
    parts = [say("mail.strip_summary", lang, good=good, days=len(k.strip))]
    bad = [dates[i] for i, d in enumerate(k.strip) if d == BAD]
    if bad:
        parts.append(say("mail.strip_bad_days", lang, dates=", ".join(bad)))
    unchecked = sum(1 for d in k.strip if d == NONE)
    if unchecked:
        parts.append(say("mail.strip_unchecked", lang, n=unchecked))
    return "; ".join(parts)


def _details(report: HealthReport, k: KindStatus) -> list[str]:
    lang = report.language
    out = []
    if k.last_verified is not None:
        result = say("mail.passed" if k.last_verify_ok else "mail.failed", lang)
        out.append(
            say("mail.last_verify", lang, when=local_day(k.last_verified, report.timezone), result=result)
        )
    if k.kept is not None and k.policy_keeps is not None:
        out.append(say("mail.kept", lang, kept=k.kept, policy=k.policy_keeps))
    return out


def _restore_line(report: HealthReport) -> str:
    lang, zone, r = report.language, report.timezone, report.restore_test
    if r is None:
        return say("mail.restore_none", lang)
    when, seconds = local_time(r.when, zone), duration(r.duration_seconds)
    if r.passed:
        return say("mail.restore_ok", lang, when=when, seconds=seconds, dump=r.dump or "-")
    return say("mail.restore_bad", lang, when=when, seconds=seconds)


def iam_summary(review: IamReviewStatus | None, lang: str) -> str:
    """``2026-12: 2 high, 1 medium, 0 low (1 new since last month)``, or that there is none yet."""
    if review is None:
        return say("iam.none", lang)
    counts = {s: review.counts.get(s, 0) for s in ("high", "medium", "low")}
    text = say("iam.summary", lang, month=review.month, **counts)
    return f"{text} ({say('iam.new', lang, n=len(review.new_high))})" if review.new_high else text


def drill_summary(report: HealthReport) -> str:
    """``05.07.2026 08:00: passed, ... after 74 minutes (target: at most 240)``, or why there is none."""
    lang, drill = report.language, report.drill
    if drill is None:
        return say("week.drill.none" if report.drill_enabled else "week.drill.off", lang)
    when, target = local_time(drill.when, report.timezone), drill.rto_target_minutes
    rto = f"{drill.rto_minutes:g}" if drill.rto_minutes is not None else "-"
    if not drill.passed:
        text = say("week.drill.failed_summary", lang, when=when)
    elif not drill.rto_met:
        text = say("week.drill.slow_summary", lang, when=when, rto=rto, target=target)
    else:
        text = say("week.drill.passed", lang, when=when, rto=rto, target=target)
    return (
        f"{text}; {say('week.drill.left_summary', lang, n=len(drill.leftovers))}" if drill.leftovers else text
    )


def _iam_lines(report: HealthReport) -> list[str]:
    """The IAM review's high findings, each with what to do."""
    lang, review = report.language, report.iam_review
    if review is None:
        return []
    return [
        f"{iam_line(f, lang)}. {say('mail.what_to_do', lang)}: {say(f'iam.todo.{f.kind}', lang)}"
        for f in review.high
    ]


def _alarm_line(a: AlarmEvent, report: HealthReport) -> str:
    return say(
        "mail.alarm_line",
        report.language,
        when=local_time(a.when, report.timezone),
        name=a.name,
        reason=a.reason,
    )


def _legend_text(lang: str) -> str:
    marks = "   ".join(f"{STRIP_CHAR[s]} {say('mail.legend_' + s, lang)}" for s in (GOOD, BAD, NONE))
    return f"{say('mail.strip', lang)}: {marks}"


# --- plain text ------------------------------------------------------------------------------------


def findings_text(found: tuple[Finding, ...], lang: str, indent: str = "") -> list[str]:
    """Numbered problems with what follows from them and what to do (the mail and backupctl status)."""
    out: list[str] = []
    for number, f in enumerate(found, 1):
        pad = indent + " " * (len(str(number)) + 2)
        out.append(f"{indent}{number}. {f.title}")
        out.append(f"{pad}{f.headline}")
        out += [f"{pad}- {c}" for c in f.consequences]
        if f.next_step is not None:
            out.append(f"{pad}{say('mail.what_to_do', lang)}: {f.next_step.text}")
            if f.next_step.command:
                out.append(f"{pad}{say('mail.run', lang)}: {f.next_step.command}")
            if f.next_step.link:
                out.append(f"{pad}{say('mail.open_console', lang)}: {f.next_step.link}")
        out.append("")
    return out


def render_text(report: HealthReport) -> str:
    lang, zone = report.language, report.timezone
    found = report.findings()
    open_, solved = [f for f in found if not f.resolved], [f for f in found if f.resolved]
    out = [
        f"{say('mail.title', lang)} – {local_day(report.generated_at, zone)}",
        say("mail.times_in", lang, zone=zone),
        "",
        headline(report),
        "",
    ]
    if open_:
        out += [f"{say('mail.problems', lang)}:", "", *findings_text(tuple(open_), lang)]
    if solved:
        out += [f"{say('mail.resolved', lang)}:", *(f" - {f.headline}" for f in solved), ""]
    out += [say("mail.backups", lang), _legend_text(lang)]
    for s in report.sources:
        out += ["", f"{say('mail.database' if s.is_database else 'mail.server', lang)} {s.label}"]
        for k in s.kinds:
            badge = say("mail.ok" if k.ok else "mail.problem", lang)
            out.append(f"  {say('kind.' + k.kind, lang)}: {badge}")
            out.append(f"    {_kind_state(k, lang, zone)}")
            if k.strip:
                dates = strip_dates(report.generated_at, len(k.strip))
                cells = "".join(STRIP_CHAR[d] for d in k.strip)
                out.append(f"    {dates[0]} {cells} {dates[-1]}")
                out.append(f"    ({_strip_summary(report, k)})")
            out += [f"    {d}" for d in _details(report, k)]
    quota = _quota(report.quota, lang) if report.quota else say("mail.quota_unknown", lang)
    out += [
        "",
        f"{say('mail.restore', lang)}: {_restore_line(report)}",
        f"{say('mail.quota', lang)}: {quota}",
        f"{say('week.drill.section', lang)}: {drill_summary(report)}",
        f"{say('iam.section', lang)}: {iam_summary(report.iam_review, lang)}",
        *(f" - {line}" for line in _iam_lines(report)),
        f"{say('mail.alarms', lang)}: {'' if report.alarms else say('mail.alarms_none', lang)}".rstrip(),
        *(f" - {_alarm_line(a, report)}" for a in report.alarms),
    ]
    if report.notes:
        out += ["", f"{say('mail.notes', lang)}:", *(f" - {n}" for n in report.notes)]
    out += ["", say("mail.footer", lang), ""]
    return "\n".join(out)


# --- HTML ------------------------------------------------------------------------------------------

_E = html.escape
_WRAP = "overflow-wrap:anywhere;word-break:break-word;"
_H2 = "font-size:17px;margin:22px 0 8px 0;"
_CODE = (
    "display:block;margin:6px 0 0 0;padding:6px 8px;background:#f0f2f5;border-radius:4px;"
    f"font-family:Consolas,Menlo,monospace;font-size:13px;white-space:pre-wrap;{_WRAP}"
)


def _badge(ok: bool, lang: str) -> str:
    color, mark = (COLOR[GOOD], "✓") if ok else (COLOR[BAD], "✗")
    text = say("mail.ok" if ok else "mail.problem", lang)
    return (
        f'<span style="display:inline-block;padding:1px 8px;border-radius:10px;background:{color};color:#fff;'
        f'font-size:12px;font-weight:bold;white-space:nowrap;">{mark} {_E(text)}</span>'
    )


def _strip_html(report: HealthReport, k: KindStatus) -> str:
    dates = strip_dates(report.generated_at, len(k.strip))
    labels = {s: say("mail.legend_" + s, report.language) for s in (GOOD, BAD, NONE)}
    cells = "".join(
        f'<td title="{_E(dates[i])} {_E(labels[state])}" style="padding:0 1px 0 0;vertical-align:bottom;">'
        f'<div style="height:{14 if state != NONE else 6}px;background:{COLOR[state]};"></div></td>'
        for i, state in enumerate(k.strip)
    )
    summary = _strip_summary(report, k)
    return (
        f'<table role="img" aria-label="{_E(say("mail.strip", report.language))}: {_E(summary)}" '
        'style="width:100%;max-width:420px;table-layout:fixed;border-collapse:collapse;margin-top:6px;">'
        f"<tr>{cells}</tr></table>"
        '<div style="max-width:420px;display:flex;justify-content:space-between;color:#555;font-size:11px;">'
        f"<span>{_E(dates[0])}</span><span>{_E(dates[-1])}</span></div>"
        f'<div style="color:#444;font-size:12px;">{_E(summary)}</div>'
    )


def _legend_html(lang: str) -> str:
    items = "".join(
        f'<span style="display:inline-block;margin:0 12px 2px 0;white-space:nowrap;">'
        f'<span style="display:inline-block;width:10px;height:{12 if s != NONE else 5}px;background:{COLOR[s]};'
        f'margin-right:4px;"></span>{_E(say("mail.legend_" + s, lang))}</span>'
        for s in (GOOD, BAD, NONE)
    )
    return f'<div style="color:#444;font-size:12px;margin:0 0 6px 0;">{_E(say("mail.strip", lang))}:<br>{items}</div>'


def _kind_html(report: HealthReport, k: KindStatus) -> str:
    lang = report.language
    details = "".join(f"<div>{_E(d)}</div>" for d in _details(report, k))
    return (
        '<div style="padding:10px 0;border-top:1px solid #e3e3e3;">'
        f"<div><b>{_E(say('kind.' + k.kind, lang))}</b> {_badge(k.ok, lang)}</div>"
        f'<div style="{_WRAP}">{_E(_kind_state(k, lang, report.timezone))}</div>'
        f"{_strip_html(report, k) if k.strip else ''}"
        f'<div style="color:#555;font-size:12px;margin-top:4px;">{details}</div></div>'
    )


def _finding_html(f: Finding, lang: str) -> str:
    consequences = "".join(f'<li style="margin:2px 0;">{_E(c)}</li>' for c in f.consequences)
    if consequences:
        consequences = f'<ul style="margin:6px 0 0 0;padding-left:18px;">{consequences}</ul>'
    step = ""
    if f.next_step is not None:
        command = f'<code style="{_CODE}">{_E(f.next_step.command)}</code>' if f.next_step.command else ""
        link = (
            f'<div style="margin-top:6px;"><a href="{_E(f.next_step.link)}" style="color:#0b5d96;">'
            f"{_E(say('mail.open_console', lang))}</a></div>"
            if f.next_step.link
            else ""
        )
        step = (
            '<div style="margin-top:8px;padding:8px 10px;background:#f7f8fa;border-radius:4px;">'
            f"<b>{_E(say('mail.what_to_do', lang))}:</b> {_E(f.next_step.text)}{command}{link}</div>"
        )
    return (
        f'<li style="margin:0 0 14px 0;padding:10px 12px;border-left:5px solid {COLOR[BAD]};background:#fff7f3;{_WRAP}">'
        f'<div style="font-weight:bold;">{_E(f.title)}</div><div style="margin-top:4px;">{_E(f.headline)}</div>'
        f"{consequences}{step}</li>"
    )


def render_html(report: HealthReport) -> str:
    lang, zone = report.language, report.timezone
    found = report.findings()
    open_, solved = [f for f in found if not f.resolved], [f for f in found if f.resolved]
    color, mark = (COLOR[GOOD], "✓") if not open_ else (COLOR[BAD], "✗")
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{_E(lang)}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_E(subject(report))}</title></head>",
        '<body style="margin:0;padding:8px;background:#f4f5f7;font-family:Arial,Helvetica,sans-serif;'
        'color:#1f1f1f;font-size:15px;line-height:1.45;">',
        '<div style="box-sizing:border-box;width:100%;max-width:760px;margin:0 auto;background:#fff;'
        'border-radius:8px;padding:16px;">',
        f'<h1 style="font-size:20px;margin:0 0 4px 0;">{_E(say("mail.title", lang))}</h1>',
        f'<div style="color:#555;margin-bottom:12px;">{_E(local_day(report.generated_at, zone))} · '
        f"{_E(say('mail.times_in', lang, zone=zone))}</div>",
        f'<div role="status" style="padding:12px 14px;border-radius:6px;background:{color};color:#fff;'
        f'font-size:16px;font-weight:bold;">{mark} {_E(headline(report))}</div>',
    ]
    if open_:
        items = "".join(_finding_html(f, lang) for f in open_)
        parts.append(
            f'<h2 style="{_H2}">{_E(say("mail.problems", lang))}</h2>'
            f'<ol style="margin:0;padding-left:22px;">{items}</ol>'
        )
    if solved:
        items = "".join(f'<li style="{_WRAP}">{_E(f.headline)}</li>' for f in solved)
        parts.append(
            f'<h2 style="{_H2}">{_E(say("mail.resolved", lang))}</h2><ul style="padding-left:20px;">{items}</ul>'
        )
    parts.append(f'<h2 style="{_H2}">{_E(say("mail.backups", lang))}</h2>{_legend_html(lang)}')
    for s in report.sources:
        label = say("mail.database" if s.is_database else "mail.server", lang)
        name = f"{_E(s.name)} " if s.name else ""
        rows = "".join(_kind_html(report, k) for k in s.kinds)
        parts.append(
            f'<h3 style="font-size:15px;margin:14px 0 4px 0;{_WRAP}">{_E(label)} {name}'
            f'<span style="color:#555;font-weight:normal;">({_E(s.source)})</span></h3>{rows}'
        )
    quota = _quota(report.quota, lang) if report.quota else say("mail.quota_unknown", lang)
    restore_ok = report.restore_test is not None and report.restore_test.passed
    alarms = (
        "".join(f'<li style="{_WRAP}">{_E(_alarm_line(a, report))}</li>' for a in report.alarms)
        if report.alarms
        else f"<li>{_E(say('mail.alarms_none', lang))}</li>"
    )
    drill_badge = f" {_badge(report.drill.ok, lang)}" if report.drill is not None else ""
    iam_items = "".join(f'<li style="{_WRAP}">{_E(line)}</li>' for line in _iam_lines(report))
    if iam_items:
        iam_items = f'<ul style="margin:4px 0 0 0;padding-left:18px;">{iam_items}</ul>'
    parts.append(
        f'<div style="padding:10px 0;border-top:1px solid #e3e3e3;margin-top:14px;"><b>{_E(say("mail.restore", lang))}</b> '
        f'{_badge(restore_ok, lang)}<div style="{_WRAP}">{_E(_restore_line(report))}</div></div>'
        f'<div style="padding:10px 0;border-top:1px solid #e3e3e3;"><b>{_E(say("mail.quota", lang))}</b>'
        f"<div>{_E(quota)}</div></div>"
        f'<div style="padding:10px 0;border-top:1px solid #e3e3e3;"><b>{_E(say("week.drill.section", lang))}</b>'
        f"{drill_badge}"
        f'<div style="{_WRAP}">{_E(drill_summary(report))}</div></div>'
        f'<div style="padding:10px 0;border-top:1px solid #e3e3e3;"><b>{_E(say("iam.section", lang))}</b>'
        f'<div style="{_WRAP}">{_E(iam_summary(report.iam_review, lang))}</div>{iam_items}</div>'
        f'<div style="padding:10px 0;border-top:1px solid #e3e3e3;"><b>{_E(say("mail.alarms", lang))}</b> '
        f'{_badge(not report.alarms, lang)}<ul style="margin:4px 0 0 0;padding-left:18px;">{alarms}</ul></div>'
    )
    if report.notes:
        notes = "".join(f'<li style="{_WRAP}">{_E(n)}</li>' for n in report.notes)
        parts.append(
            f'<h2 style="{_H2}">{_E(say("mail.notes", lang))}</h2><ul style="padding-left:20px;">{notes}</ul>'
        )
    parts.append(
        f'<p style="color:#666;font-size:12px;margin-top:20px;">{_E(say("mail.footer", lang))}</p></div></body></html>'
    )
    return "\n".join(parts)

"""The week as the admin reads it (lambdas.common.week, lambdas.common.rendering): a week with each
kind of problem, and with none, in English and German; grouping, counts, next steps, local times,
names, plain alarm reasons, no English in the German mail, and the layout measured in Chromium at
phone and desktop width (screenshots under build/mail-preview/, or $MAIL_PREVIEW_DIR)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lambdas.common.contracts import State
from lambdas.common.jobs.report import kind_status
from lambdas.common.jobs.verify import BackupSeen, Check
from lambdas.common.messages import CATALOGUE, msg, say
from lambdas.common.rendering import render_html, render_text, subject
from lambdas.common.retention import RetentionPolicy
from lambdas.common.week import (
    ALARM,
    BACKUP,
    BAD,
    GOOD,
    OFFSITE,
    PRUNE,
    QUOTA,
    RESTORE_FAILED,
    SELECTION,
    UNCONFIRMED,
    VERIFY_SILENT,
    AlarmEvent,
    HealthReport,
    KindStatus,
    Quota,
    RestoreTestStatus,
    SourceStatus,
    alarm_reason,
)
from tests.unit.test_messages import english_words

NOW = datetime(2026, 11, 30, 6, 30, tzinfo=UTC)  # Monday 07:30 in Zurich
ZONE = "Europe/Zurich"
WEB = "i-3ad81e0a1c0fe9ece"
DB = "school-db"
POLICY = RetentionPolicy(keep_daily=7, keep_weekly=4, keep_monthly=3, max_age_days=90, min_keep=3)
PREVIEW = Path(
    os.environ.get("MAIL_PREVIEW_DIR") or Path(__file__).resolve().parents[3] / "build" / "mail-preview"
)
EVERY = ("dump-failed", "rds-missing", "ami-prune", "restore-failed", "quota", "unconfirmed", "selection",
         "verify-silent", "alarm-alone", "alarm-solved")  # fmt: skip


def _state(
    k: Check, strip: tuple[str, ...], kept: int | None = None, policy: int | None = None
) -> KindStatus:
    return kind_status(
        k,
        strip=strip,
        last_verified=NOW - timedelta(minutes=60),
        last_verify_ok=k.ok,
        kept=kept,
        policy_keeps=policy,
    )


def _check(kind: str, source: str, name: str, target: int, backups: list[BackupSeen], language: str) -> Check:
    check = Check(source, kind, target, NOW, backups=backups, zone=ZONE, language=language, name=name)
    return check.evaluate().check_pruned(POLICY)


def _alarm(
    name: str, when: datetime, data: dict[str, object], language: str, still: bool | None = True
) -> AlarmEvent:
    state = {
        "stateValue": "ALARM",
        "stateReason": "Threshold Crossed: 1 datapoint [1.0]",
        "stateReasonData": data,
    }
    return AlarmEvent(
        f"SchoolBackup-{name}",
        when,
        alarm_reason(f"SchoolBackup-{name}", "SchoolBackup-", state, language),
        still,
    )


def week(language: str, *problems: str) -> HealthReport:
    """A school's week: web (dump, AMI) and the school database (RDS); ``problems`` break parts of it."""
    p = set(problems)
    ok_strip = tuple([GOOD] * 30)
    dumps = [BackupSeen("20261130T0034Z", NOW - timedelta(hours=6), State.USABLE)]
    if "dump-failed" in p:  # last night's dump failed: no manifest; the good one before it is 54 hours old
        dumps = [
            BackupSeen("20261130T0034Z", NOW - timedelta(hours=6), State.FAILED, msg("state.no_manifest")),
            BackupSeen("20261128T0034Z", NOW - timedelta(hours=54), State.USABLE),
        ]
    dump = _check("dump", WEB, "web", 26, dumps, language)
    amis = [BackupSeen(f"sb-{WEB}-20261129-0200", NOW - timedelta(days=1), State.USABLE)]
    kept = 4
    if (
        "ami-prune" in p
    ):  # prune stopped: old AMIs beyond MIN_KEEP are still there, more than the policy keeps
        amis += [
            BackupSeen(f"sb-{WEB}-2026080{d}-0200", NOW - timedelta(days=100 + d), State.USABLE)
            for d in range(1, 6)
        ]
        kept = 9
    ami = _check("ami", WEB, "web", 192, amis, language)
    snaps = (
        []
        if "rds-missing" in p
        else [BackupSeen(f"sb-{DB}-20261130-0230", NOW - timedelta(hours=4), State.USABLE)]
    )
    rds = _check("rds", DB, "school database", 26, snaps, language)
    dump_strip = (*[GOOD] * 29, BAD) if "dump-failed" in p else ok_strip
    alarms: list[AlarmEvent] = []
    if "dump-failed" in p:
        alarms.append(
            _alarm(
                "VerificationFailed",
                NOW - timedelta(minutes=59),
                {"recentDatapoints": [1.0], "threshold": 0.0},
                language,
            )
        )
        alarms.append(
            _alarm(
                "dump-backup-age",
                NOW - timedelta(minutes=58),
                {"recentDatapoints": [54.0], "threshold": 26.0},
                language,
            )
        )
    if "alarm-alone" in p:
        alarms.append(
            _alarm(
                "report-errors",
                NOW - timedelta(days=3),
                {"recentDatapoints": [1.0], "threshold": 0.0},
                language,
            )
        )
    if "alarm-solved" in p:
        alarms.append(
            _alarm(
                "ami_backup-errors",
                NOW - timedelta(days=5),
                {"recentDatapoints": [1.0]},
                language,
                still=False,
            )
        )
    restore = RestoreTestStatus(
        NOW - timedelta(minutes=30), True, 42.0, f"dumps/{WEB}/2026/11/29/20261129T0034Z/"
    )
    if "restore-failed" in p:
        restore = RestoreTestStatus(
            NOW - timedelta(minutes=30),
            False,
            12.0,
            None,
            ("files.tar.gz: sha256 mismatch.",),
            "reports/restore-tests/20261130T0600Z.json",
        )
    return HealthReport(
        generated_at=NOW,
        language=language,
        sources=(
            SourceStatus(DB, True, (_state(rds, ok_strip, 7, 7),), "school database"),
            SourceStatus(WEB, False, (_state(dump, dump_strip), _state(ami, ok_strip, kept, 4)), "web"),
        ),
        restore_test=restore,
        alarms=tuple(alarms),
        quota=Quota(85, 100) if "quota" in p else Quota(14, 100),
        unconfirmed=("it-deputy@school.ch",) if "unconfirmed" in p else (),
        timezone=ZONE,
        selection_problems=(say("verify.missing_ec2", language, id="i-0aaaaaaaaaaaaaaaa"),)
        if "selection" in p
        else (),
        verify_silent_days=4 if "verify-silent" in p else 0,
        region="eu-central-2",
        topic_arn="arn:aws:sns:eu-central-2:123456789012:SchoolBackup-alarms",
    )


def numbered(text: str) -> list[str]:
    return re.findall(r"^(\d+)\. ", text, flags=re.MULTILINE)


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_good_week_says_so_and_lists_no_problem(language: str) -> None:
    report = week(language)
    assert report.problems() == () and report.ok
    assert subject(report) == f"{say('mail.title', language)} 30.11.2026: {say('mail.subject_ok', language)}"
    text, page = render_text(report), render_html(report)
    assert say("mail.all_ok", language) in text and html.escape(say("mail.all_ok", language)) in page
    assert numbered(text) == [] and "<ol" not in page
    assert say("mail.problems", language) not in text


@pytest.mark.parametrize("language", ["en", "de"])
def test_one_failed_dump_is_one_problem_with_its_consequences_and_next_step_under_it(language: str) -> None:
    report = week(language, "dump-failed")
    [problem] = report.problems()
    assert (problem.cause, problem.kind, problem.source) == (BACKUP, "dump", WEB)
    assert problem.title == f"{say('kind.dump', language)}: web ({WEB})"
    assert "20261130T0034Z" in problem.headline and say("state.no_manifest", language) in problem.headline
    stale, *alarm_lines = problem.consequences
    assert "20261128T0034Z" in stale and "54" in stale  # the newest good dump is now too old
    assert [a.split(" ")[1] for a in alarm_lines] == [
        "SchoolBackup-VerificationFailed",
        "SchoolBackup-dump-backup-age",
    ]
    assert problem.next_step is not None and problem.next_step.command == "backupctl run dump"
    assert problem.next_step.link.endswith(
        "#logsV2:log-groups/log-group/$252Fschoolbackup$252FSchoolBackup$252Fdump"
    )
    assert "/schoolbackup/SchoolBackup/dump" in problem.next_step.text
    text, page = render_text(report), render_html(report)
    # Said once, with the count of what is listed: not once per symptom, not again in the row.
    assert text.count(problem.headline) == 1 and page.count(html.escape(problem.headline)) == 1
    assert numbered(text) == ["1"] and page.count('<li style="margin:0 0 14px 0;') == 1
    assert say("mail.attention_one", language) in text
    assert subject(report).endswith(say("mail.subject_one", language))
    assert "Threshold" not in text and "Threshold" not in page
    assert f"{say('mail.run', language)}: backupctl run dump" in text


@pytest.mark.parametrize("language", ["en", "de"])
def test_every_kind_of_problem_is_grouped_counted_and_says_what_to_do(language: str) -> None:
    report = week(language, *EVERY)
    found = report.findings()
    open_ = [f for f in found if not f.resolved]
    assert [(f.cause, f.kind) for f in open_] == [
        (BACKUP, "rds"),
        (BACKUP, "dump"),
        (PRUNE, "ami"),
        (RESTORE_FAILED, ""),
        (QUOTA, ""),
        (SELECTION, ""),
        (VERIFY_SILENT, ""),
        (UNCONFIRMED, ""),
        (ALARM, ""),
    ]
    [solved] = [f for f in found if f.resolved]
    assert solved.cause == ALARM and "SchoolBackup-ami_backup-errors" in solved.headline
    for f in found:
        assert f.next_step is not None and f.next_step.text, f"{f.title}: no next step"
        assert f.next_step.command.startswith("backupctl ") or f.next_step.link.startswith("https://"), (
            f.title
        )
    prune = open_[2]
    assert prune.next_step is not None and prune.next_step.command == "backupctl prune --dry-run"
    # the policy keeps fewer than are there: the same cause, under the same problem
    assert prune.consequences == (say("finding.too_many", language, kept=9, policy=4),)
    # each alarm is said once, under the first problem it belongs to
    alarm_lines = [c for f in found for c in f.consequences if "SchoolBackup-" in c]
    assert len(alarm_lines) == len(set(alarm_lines)) == 2  # the other two stand alone
    text, page = render_text(report), render_html(report)
    n = len(open_)
    assert say("mail.attention_many", language, n=n) in text
    assert subject(report).endswith(say("mail.subject_many", language, n=n))
    assert numbered(text) == [str(i) for i in range(1, n + 1)]
    assert page.count('<li style="margin:0 0 14px 0;') == n
    assert say("mail.resolved", language) in text and solved.headline in text
    commands = re.findall(rf"^ +{say('mail.run', language)}: backupctl ", text, flags=re.MULTILINE)
    assert len(commands) == sum(1 for f in open_ if f.next_step and f.next_step.command)


def test_times_are_local_with_utc_where_a_name_depends_on_it_and_sources_go_by_name() -> None:
    report = week("de", "dump-failed")
    text = render_text(report)
    assert "Alle Zeitangaben in Europe/Zurich." in text
    # the failed dump is named after 00:34 UTC: the sentence shows both
    assert "Die neueste Sicherung 20261130T0034Z (30.11.2026 01:30 Europe/Zurich, 00:30 UTC)" in text
    assert "Alarm SchoolBackup-VerificationFailed wurde am 30.11.2026 06:31 ausgelöst" in text
    assert f"Server web ({WEB})" in text and f"Datenbank school database ({DB})" in text
    assert f"Dateien und Datenbank-Dump: web ({WEB})" in text
    assert "2026-11-30" not in text  # one date format


@pytest.mark.parametrize(
    ("name", "data", "english", "german"),
    [
        (
            "VerificationFailed",
            {"recentDatapoints": [2.0]},
            "the daily check found 2 problem(s)",
            "2 Problem(e)",
        ),
        (
            "dump-backup-age",
            {"recentDatapoints": [30.0, 54.0], "threshold": 26.0},
            "was 54 hours old (target: at most 26 hours)",
            "54 Stunden alt",
        ),
        (
            "dump-backup-age",
            {"recentDatapoints": [], "threshold": 26.0},
            "no value arrived from the daily check",
            "kam kein Wert",
        ),
        (
            "RdsSnapshotQuota",
            {"recentDatapoints": [85.0], "threshold": 80.0},
            "85 % of the database snapshot quota",
            "85 % des Kontingents",
        ),
        (
            "prune-errors",
            {"recentDatapoints": [1.0]},
            "the job prune failed (1 error(s))",
            "der Job prune ist fehlgeschlagen",
        ),
        (
            "RestoreTestFailed",
            {"recentDatapoints": [0.0]},
            "the weekly restore test failed",
            "Wiederherstellungstest ist fehlgeschlagen",
        ),
        (
            "rds-backup-age-offsite",
            {"recentDatapoints": [30.0, 60.0], "threshold": 50.0},
            "offsite copy (database snapshot) of a server or database was 60 hours old (target: at most 50",
            "Kopie ausser Haus (Datenbank-Snapshot) eines Servers oder einer Datenbank war 60 Stunden",
        ),
        (
            "ReplicationFailed",
            {"recentDatapoints": [2.0, 1.0]},
            "could not replicate 3 dump object(s) to the offsite copy bucket",
            "konnte 3 Dump-Objekt(e) nicht in den Kopie-Bucket",
        ),
    ],
)
def test_alarm_reasons_are_plain_words_from_the_state_change(
    name: str, data: dict[str, object], english: str, german: str
) -> None:
    state = {
        "stateReason": "Threshold Crossed: 1 out of the last 1 datapoints [1.0 (30/11/26 05:30:00)]",
        "stateReasonData": json.dumps(data),
    }
    assert english in alarm_reason(f"SchoolBackup-{name}", "SchoolBackup-", state, "en")
    said = alarm_reason(f"SchoolBackup-{name}", "SchoolBackup-", state, "de")
    assert german in said and "Threshold" not in said and english_words(said) == []


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("name", ["ami-backup-age-offsite", "ReplicationFailed", "offsite_copy-errors"])
def test_an_offsite_alarm_stands_under_the_offsite_problem(language: str, name: str) -> None:
    """The copies' alarms belong to the offsite problem, not to the home backups (which are fine)."""
    alarm = _alarm(name, NOW - timedelta(hours=3), {"recentDatapoints": [1.0], "threshold": 0.0}, language)
    report = replace(
        week(language),
        alarms=(alarm,),
        offsite_problems=("the AMI of web, offsite copy in eu-central-1: none found",),
        offsite_region="eu-central-1",
    )
    [problem] = report.problems()
    assert problem.cause == OFFSITE and "eu-central-1" in problem.title
    assert problem.headline == "the AMI of web, offsite copy in eu-central-1: none found"
    assert [line.split(" ")[1] for line in problem.consequences] == [f"SchoolBackup-{name}"]
    # Without an offsite problem the alarm is a problem of its own: never dropped.
    [alone] = replace(report, offsite_problems=()).problems()
    assert alone.cause != OFFSITE and f"SchoolBackup-{name}" in alone.title


def _visible_text(page: str) -> str:
    page = re.sub(r"<(script|style|title)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_the_german_mail_has_no_english_sentence_in_it() -> None:
    report = week("de", *EVERY)
    text, page = render_text(report), _visible_text(render_html(report))
    english_parts = {
        part.strip()
        for en, _ in CATALOGUE.values()
        for part in re.split(r"\{[^}]*\}", en)
        if len(part.strip()) > 14
    }
    for rendering in (text, page):
        hits = [w for line in rendering.splitlines() for w in english_words(line)]
        assert hits == [], f"English words in the German mail: {hits}"
        assert [p for p in english_parts if p in rendering] == []


def test_the_english_check_of_the_mail_would_catch_a_missing_translation() -> None:
    report = week("de", "dump-failed")
    broken = render_text(report).replace("Die neueste gute Sicherung", "The newest good backup")
    assert english_words(broken) != []


def test_html_escapes_every_value_and_text_stays_plain() -> None:
    report = week("en", "dump-failed")
    named = SourceStatus(WEB, False, report.sources[1].kinds, "<script>alert(1)</script>")
    report = replace(report, sources=(report.sources[0], named))
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" in render_text(report)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium); CI must have it",
)
# Runs in the page that frames the mail at the given width: every element's box, the widest line, and
# the contrast of text on its own background (WCAG: at least 4.5:1).
MEASURE = """<script>
const frame = document.getElementById('mail');
frame.addEventListener('load', () => {
  const d = frame.contentDocument, w = d.documentElement.clientWidth, wide = [], faint = [], colors = new Set();
  const lum = (c) => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => v / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const background = (e) => { for (; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor;
    if (!c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
  for (const e of d.body.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width && (r.right > w + 0.5 || r.left < -0.5)) wide.push(e.tagName + ' ' + Math.round(r.left) + '..' + Math.round(r.right) + ' ' + (e.textContent || '').slice(0, 60));
    const bg = getComputedStyle(e).backgroundColor; if (!bg.startsWith('rgba(0, 0, 0, 0)')) colors.add(bg);
    const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (own) { const a = lum(getComputedStyle(e).color), b = lum(background(e));
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      if (ratio < 4.5) faint.push(e.tagName + ' ' + ratio.toFixed(2) + ' ' + e.textContent.trim().slice(0, 40)); }
  }
  document.body.setAttribute('data-layout', JSON.stringify({w: w, sw: d.documentElement.scrollWidth,
    h: d.documentElement.scrollHeight, wide: wide, faint: faint, colors: [...colors]}));
});
</script>"""


def _framed(mail: str, width: int, height: int) -> str:
    return (
        '<!DOCTYPE html><html><body style="margin:0;background:#444;">'
        f'<iframe id="mail" style="width:{width}px;height:{height}px;border:0;display:block;" '
        f'srcdoc="{html.escape(mail)}"></iframe>{MEASURE}</body></html>'
    )


def _chromium(tmp_path: Path, page: Path, window: tuple[int, int], *extra: str) -> str:
    assert CHROMIUM is not None, "CI is set but chromium is missing: add it to CI's apt-get install"
    run = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={window[0]},{window[1]}",
            *extra,
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=90,
    )
    return run.stdout


def measure(tmp_path: Path, mail: str, width: int) -> dict[str, object]:
    """The mail laid out by Chromium in a viewport ``width`` px wide (headless windows are at least
    500 px wide, so the mail sits in a frame of exactly that width, as in a phone's mail app)."""
    page = tmp_path / f"framed-{width}.html"
    page.write_text(_framed(mail, width, 900), encoding="utf-8")
    dom = _chromium(tmp_path, page, (max(width, 500), 900), "--dump-dom")
    found = re.search(r'data-layout="([^"]*)"', dom)
    assert found, "the measuring script did not run"
    layout: dict[str, object] = json.loads(html.unescape(found.group(1)))
    return layout


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _rgb(color: str) -> str:
    return "rgb({}, {}, {})".format(*(int(color[i : i + 2], 16) for i in (1, 3, 5)))


@needs_chromium
@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("width", [390, 1024])
def test_the_mail_fits_a_phone_and_a_desktop_in_chromium(tmp_path: Path, language: str, width: int) -> None:
    from lambdas.common.rendering import COLOR

    mail = render_html(week(language, *EVERY))
    layout = measure(tmp_path, mail, width)
    assert layout["w"] == width
    assert layout["wide"] == [], f"wider than {width} px: {layout['wide']}"
    assert layout["sw"] == width  # no sideways scrolling
    assert layout["faint"] == [], f"text below 4.5:1 contrast: {layout['faint']}"
    colors = set(layout["colors"])  # type: ignore[call-overload]
    assert {_rgb(COLOR[GOOD]), _rgb(COLOR[BAD])} <= colors  # the strip and the badges
    # A screenshot of the whole mail, where a reviewer can open it.
    height = int(layout["h"])  # type: ignore[call-overload]
    PREVIEW.mkdir(parents=True, exist_ok=True)
    (PREVIEW / f"weekly-{language}.html").write_text(mail, encoding="utf-8")
    page = tmp_path / "shot.html"
    page.write_text(_framed(mail, width, height), encoding="utf-8")
    shot = PREVIEW / f"weekly-{language}-{width}px.png"
    _chromium(tmp_path, page, (max(width, 500), height), f"--screenshot={shot}")
    assert _png_size(shot.read_bytes()) == (max(width, 500), height)
    assert shot.stat().st_size > 20_000  # a page of text, badges and strips: far from blank


@needs_chromium
def test_the_layout_measure_catches_a_mail_too_wide_for_a_phone(tmp_path: Path) -> None:
    mail = render_html(week("en", "dump-failed")).replace("max-width:760px", "min-width:600px")
    layout = measure(tmp_path, mail, 390)
    assert layout["wide"] != [] and int(layout["sw"]) > 390  # type: ignore[call-overload]


def test_a_failed_restore_test_lists_its_findings_in_english_and_names_the_record_in_german() -> None:
    [en] = [f for f in week("en", "restore-failed").problems() if f.cause == RESTORE_FAILED]
    assert en.consequences == ("Files.tar.gz: sha256 mismatch.",)
    [de] = [f for f in week("de", "restore-failed").problems() if f.cause == RESTORE_FAILED]
    assert de.consequences == (
        "Was bei jeder Datei nicht stimmte, steht (auf Englisch) im Bericht reports/restore-tests/20261130T0600Z.json.",
    )
    assert de.next_step is not None and de.next_step.command == "backupctl run restore_test"

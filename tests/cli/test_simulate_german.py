"""backupctl simulate with ``language: de``: the per-week lines, what the policy keeps and why, the alarms
and mails and which alarm caught the injected failure, and the usage errors, in German."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from cli.backupctl.rehearsal import INJECTIONS, Injection, Rehearsal
from cli.backupctl.simulate import _caught, why_kept
from tests.cli.conftest import Result
from tests.unit.test_messages import english_words


def _without_job_errors(lines: list[str]) -> list[str]:
    """The lines, each alarm reason cut after "ist fehlgeschlagen:" (what follows is the job's exception,
    written by the job, not by simulate)."""
    return [line.split(" ist fehlgeschlagen: ")[0] for line in lines]


def test_a_german_rehearsal_speaks_german(german_config: Path, cli: Callable[..., Result]) -> None:
    # 8 days: the default failure (a missed dump) is injected on the last day, a Monday.
    result = cli("--config", str(german_config), "simulate", "--days", "8", "--start", "2026-03-23")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Woche  1: 34 Läufe in Ordnung; kein Lauf fehlgeschlagen"
    assert lines[1] == "Woche  2: 4 Läufe in Ordnung; 30.03.2026 dump, 30.03.2026 verify"
    assert lines[2] == "Am Ende aufbewahrt (und nach welcher Regel)"
    header = lines[4]
    assert all(column in header for column in ("Quelle", "Art", "Sicherung", "erstellt", "Grund"))
    table = result.stdout
    assert "Datenbank-Snapshot" in table and "Server-Abbild (AMI)" in table
    assert "Tag 27.03.2026" in table and "Woche 12/2026" in table and "min_keep (die 3" in table
    assert (
        "school-db: 0 Dumps (die Lebenszyklus-Regel des Buckets lässt sie ablaufen), 8 RDS-Snapshots, 0 "
        "Server-Abbilder (AMI)" in lines
    )
    assert "Alarme, die ausgelöst worden wären:" in lines
    assert (
        "  30.03.2026  SchoolBackup-VerificationFailed: die Prüfung (verify) hat 1 Problem(e) gefunden"
        in lines
    )
    assert any(
        line.startswith("  30.03.2026  SchoolBackup-verify-errors: verify ist fehlgeschlagen: ")
        for line in lines
    )
    assert "Wochenberichte: 2" in lines
    assert "  30.03.2026  schoolbackup Wochenbericht 30.03.2026: 1 Problem braucht Sie" in lines
    assert lines[-1] == (
        "Simulierter Ausfall am 30.03.2026: der Dump lief in dieser Nacht nicht (Server ausgeschaltet, "
        "Agent gestoppt) -> erkannt von SchoolBackup-verify-errors am 30.03.2026"
    )
    assert [w for line in _without_job_errors(lines) for w in english_words(line)] == []


def test_a_german_rehearsal_names_a_failure_no_alarm_caught(
    german_config: Path, cli: Callable[..., Result]
) -> None:
    result = cli("--config", str(german_config), "simulate", "--days", "3", "--inject", "prune-stopped@2")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "Es wurde kein Alarm ausgelöst." in lines
    assert lines[-1].startswith("Simulierter Ausfall am ")
    assert lines[-1].endswith(
        ": das Aufräumen (prune) lief ab diesem Tag nicht mehr -> von KEINEM Alarm erkannt"
    )
    assert [w for line in lines for w in english_words(line)] == []


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (
            ("--inject", "meteor@3"),
            "backupctl: --inject 'meteor@3': Verwenden Sie eines von missed-dump, failed-rds-snapshot, "
            "corrupt-dump, prune-stopped (oder «none»), wahlweise mit @DAY (dem Tag der Simulation), z. B. "
            "missed-dump@10",
        ),
        (
            ("--days", "5", "--inject", "missed-dump@9"),
            "backupctl: --inject 'missed-dump@9': Tag 9 liegt ausserhalb der 5 simulierten Tage",
        ),
        (
            ("--start", "gestern"),
            "backupctl: --start 'gestern' ist kein Datum in der Form 2026-08-01 (Jahr-Monat-Tag)",
        ),
    ],
)
def test_german_usage_errors(
    german_config: Path, cli: Callable[..., Result], args: tuple[str, ...], sentence: str
) -> None:
    result = cli("--config", str(german_config), "simulate", *args)
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()) == sentence
    typed = result.stderr
    for name in INJECTIONS:  # the values to type are the same in both languages
        typed = typed.replace(name, "")
    assert english_words(typed) == []


def test_the_policy_s_reasons_in_german() -> None:
    reason = "daily 2026-03-30; weekly 2026-W14; monthly 2026-03; min_keep (newest 3 usable)"
    assert why_kept(reason, "en") == reason
    assert (
        why_kept(reason, "de")
        == "Tag 30.03.2026; Woche 14/2026; Monat 03.2026; min_keep (die 3 neuesten verwendbaren)"
    )
    assert why_kept("failed: newest failure kept as evidence", "de") == (
        "fehlgeschlagen: die neueste fehlgeschlagene Sicherung bleibt als Beleg"
    )
    assert why_kept("pending: never deleted", "de") == "in Arbeit: wird nie gelöscht"
    assert why_kept("something new", "de") == "something new"  # a reason it does not know stays as it is


@pytest.mark.parametrize(
    ("what", "reason"),
    [
        (
            "missed-dump",
            "verify ist fehlgeschlagen: ... Dump von web (i-0abc): Die neueste gute Sicherung ...",
        ),
        ("corrupt-dump", "verify ist fehlgeschlagen: ... Dump von web (i-0abc): ... ist beschädigt ..."),
        (
            "failed-rds-snapshot",
            "verify ist fehlgeschlagen: ... RDS-Snapshot von school database (school-db) ...",
        ),
    ],
)
def test_the_alarm_that_caught_a_failure_is_found_in_german_words(what: str, reason: str) -> None:
    rehearsal = cast(Rehearsal, SimpleNamespace(start=date(2026, 3, 23)))
    alarms = [
        {
            "day": "2026-03-25",
            "name": "SchoolBackup-VerificationFailed",
            "reason": "die Prüfung ... gefunden",
        },
        {"day": "2026-03-25", "name": "SchoolBackup-verify-errors", "reason": reason},
    ]
    assert _caught(Injection(3, what), rehearsal, alarms) == alarms[1]

"""The catalogue's entries for backupctl simulate (simulate, rehearsal)."""

from __future__ import annotations

from typing import Final

ENTRIES: Final[dict[str, tuple[str, str]]] = {
    # --- the command line ------------------------------------------------------------------------
    "cli.simulate.bad_inject": (
        "--inject {item}: use one of {names} (or none), optionally with @DAY, e.g. missed-dump@10",
        "--inject {item}: Verwenden Sie eines von {names} (oder «none»), wahlweise mit @DAY (dem Tag der "
        "Simulation), z. B. missed-dump@10",
    ),
    "cli.simulate.day_outside": (
        "--inject {item}: day {day} is outside the {days} simulated days",
        "--inject {item}: Tag {day} liegt ausserhalb der {days} simulierten Tage",
    ),
    "cli.simulate.bad_start": (
        "--start {start} is not a date like 2026-08-01",
        "--start {start} ist kein Datum in der Form 2026-08-01 (Jahr-Monat-Tag)",
    ),
    "cli.simulate.progress": ("rehearsing", "Probelauf"),
    "cli.simulate.progress_days": ("days", "Tage"),
    # --- the failures that can be injected -------------------------------------------------------
    "cli.simulate.inject.missed-dump": (
        "the dump did not run that night (server off, agent stopped)",
        "der Dump lief in dieser Nacht nicht (Server ausgeschaltet, Agent gestoppt)",
    ),
    "cli.simulate.inject.failed-rds-snapshot": (
        "that night's RDS snapshot ended in status 'failed'",
        "der RDS-Snapshot dieser Nacht endete im Status 'failed'",
    ),
    "cli.simulate.inject.corrupt-dump": (
        "that night's database dump object was cut short after it was written",
        "die Datenbank-Datei des Dumps dieser Nacht wurde nach dem Schreiben gekürzt",
    ),
    "cli.simulate.inject.prune-stopped": (
        "prune stopped running from that day on",
        "das Aufräumen (prune) lief ab diesem Tag nicht mehr",
    ),
    # --- the rehearsal's alarms (why each went off) ----------------------------------------------
    "cli.simulate.reason.errors": ("{job} failed: {failed}", "{job} ist fehlgeschlagen: {failed}"),
    "cli.simulate.reason.backup_age": (
        "the newest good {kind} backup is older than {hours} hours (two daily checks)",
        "die neueste gute Sicherung ({kind}) ist älter als {hours} Stunden (zwei tägliche Prüfungen "
        "nacheinander)",
    ),
    "cli.simulate.reason.verify": (
        "verify found {n} problem(s)",
        "die Prüfung (verify) hat {n} Problem(e) gefunden",
    ),
    "cli.simulate.reason.restore_test": (
        "the restore test failed",
        "der Wiederherstellungstest ist fehlgeschlagen",
    ),
    "cli.simulate.kind.dump": ("dump", "Dump"),
    "cli.simulate.kind.rds": ("rds", "Datenbank-Snapshot"),
    "cli.simulate.kind.ami": ("ami", "Server-Abbild (AMI)"),
    # --- what the rehearsal prints ---------------------------------------------------------------
    "cli.simulate.week": (
        "week {week:>2}: {ok} runs ok; {failed}",
        "Woche {week:>2}: {ok} Läufe in Ordnung; {failed}",
    ),
    "cli.simulate.none_failed": ("none failed", "kein Lauf fehlgeschlagen"),
    "cli.simulate.kept": (
        "Kept at the end (and by which rule)",
        "Am Ende aufbewahrt (und nach welcher Regel)",
    ),
    "cli.simulate.kept_columns": ("source|kind|backup|made|why", "Quelle|Art|Sicherung|erstellt|Grund"),
    "cli.simulate.why.daily": ("daily {bucket}", "Tag {bucket}"),
    "cli.simulate.why.weekly": ("weekly {bucket}", "Woche {bucket}"),
    "cli.simulate.why.monthly": ("monthly {bucket}", "Monat {bucket}"),
    "cli.simulate.why.min_keep": ("min_keep (newest {n} usable)", "min_keep (die {n} neuesten verwendbaren)"),
    "cli.simulate.why.evidence": (
        "failed: newest failure kept as evidence",
        "fehlgeschlagen: die neueste fehlgeschlagene Sicherung bleibt als Beleg",
    ),
    "cli.simulate.why.pending": ("pending: never deleted", "in Arbeit: wird nie gelöscht"),
    "cli.simulate.inventory": (
        "{source}: {dumps} dumps (the bucket lifecycle expires them), {rds} RDS snapshots, {ami} AMIs",
        "{source}: {dumps} Dumps (die Lebenszyklus-Regel des Buckets lässt sie ablaufen), {rds} RDS-Snapshots, "
        "{ami} Server-Abbilder (AMI)",
    ),
    "cli.simulate.alarms": ("Alarms that would have gone out:", "Alarme, die ausgelöst worden wären:"),
    "cli.simulate.no_alarm": ("No alarm went out.", "Es wurde kein Alarm ausgelöst."),
    "cli.simulate.mails": ("Weekly mails: {n}", "Wochenberichte: {n}"),
    "cli.simulate.caught": (
        "Injected on {day}: {what} -> caught by {name} on {caught_day}",
        "Simulierter Ausfall am {day}: {what} -> erkannt von {name} am {caught_day}",
    ),
    "cli.simulate.not_caught": (
        "Injected on {day}: {what} -> NOT CAUGHT by any alarm",
        "Simulierter Ausfall am {day}: {what} -> von KEINEM Alarm erkannt",
    ),
}

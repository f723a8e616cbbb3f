"""The catalogue's entries for the restore drill: its mail, its alarms, ``backupctl drill``."""

from __future__ import annotations

from typing import Final

ENTRIES: Final[dict[str, tuple[str, str]]] = {
    # --- the drill's mail ------------------------------------------------------------------------
    "drill.subject_passed": (
        "schoolbackup restore drill {when}: passed, the school was working again after {rto} minutes",
        "schoolbackup Wiederherstellungsübung {when}: bestanden, die Schule lief nach {rto} Minuten wieder",
    ),
    "drill.subject_slow": (
        "schoolbackup restore drill {when}: restored, but after {rto} minutes (target: {target})",
        "schoolbackup Wiederherstellungsübung {when}: wiederhergestellt, aber erst nach {rto} Minuten "
        "(Ziel: {target})",
    ),
    "drill.subject_failed": (
        "schoolbackup restore drill {when}: FAILED, the backups could not be restored and checked",
        "schoolbackup Wiederherstellungsübung {when}: FEHLGESCHLAGEN, die Sicherungen liessen sich nicht "
        "wiederherstellen und prüfen",
    ),
    "drill.times_in": ("All times in {zone}. The phases:", "Alle Zeitangaben in {zone}. Die Schritte:"),
    "drill.rto": (
        "Achieved recovery time: {rto} minutes (target: at most {target} minutes).",
        "Erreichte Wiederherstellungszeit: {rto} Minuten (Ziel: höchstens {target} Minuten).",
    ),
    "drill.cost": (
        "Estimated cost of this drill: {usd} USD (instance hours at on-demand prices).",
        "Geschätzte Kosten dieser Übung: {usd} USD (Instanzstunden zu On-Demand-Preisen).",
    ),
    "drill.torn_down": (
        "Everything the drill created has been deleted again.",
        "Alles, was die Übung angelegt hat, ist wieder gelöscht.",
    ),
    "drill.leftovers": (
        "Not yet deleted (the daily cleanup removes it): {ids}",
        "Noch nicht gelöscht (die tägliche Aufräumung entfernt es): {ids}",
    ),
    "drill.error": ("Why it stopped: {error}", "Warum sie abbrach: {error}"),
    "drill.see": ("Details: {command}", "Einzelheiten: {command}"),
    "drill.cleanup_subject": (
        "schoolbackup: {n} leftover(s) of a restore drill removed",
        "schoolbackup: {n} Überbleibsel einer Wiederherstellungsübung entfernt",
    ),
    "drill.cleanup_text": (
        "These resources of a restore drill were older than the drill's maximum runtime ({hours} h) and "
        "have been deleted (a drill stopped by hand, or a teardown that gave up):",
        "Diese Ressourcen einer Wiederherstellungsübung waren älter als die maximale Laufzeit der Übung "
        "({hours} h) und wurden gelöscht (eine von Hand gestoppte Übung oder ein abgebrochener Abbau):",
    ),
    "drill.cleanup_problem": ("Could not delete: {problem}", "Konnte nicht gelöscht werden: {problem}"),
    # --- the weekly mail and backupctl status -----------------------------------------------------
    "week.drill.section": ("Restore drill", "Wiederherstellungsübung"),
    "week.drill.off": (
        "switched off (restore_drill.enabled is false)",
        "ausgeschaltet (restore_drill.enabled ist false)",
    ),
    "week.drill.none": (
        "none recorded yet ('backupctl drill start' runs one now)",
        "noch keine aufgezeichnet ('backupctl drill start' führt jetzt eine durch)",
    ),
    "week.drill.passed": (
        "{when}: passed, the school was working again after {rto} minutes (target: at most {target})",
        "{when}: bestanden, die Schule lief nach {rto} Minuten wieder (Ziel: höchstens {target})",
    ),
    "week.drill.slow_summary": (
        "{when}: restored, but after {rto} minutes (target: at most {target})",
        "{when}: wiederhergestellt, aber erst nach {rto} Minuten (Ziel: höchstens {target})",
    ),
    "week.drill.failed_summary": (
        "{when}: FAILED, the school was not restored and checked",
        "{when}: FEHLGESCHLAGEN, die Schule wurde nicht wiederhergestellt und geprüft",
    ),
    "week.drill.left_summary": ("{n} resource(s) not deleted", "{n} Ressource(n) nicht gelöscht"),
    "week.drill.title": ("Restore drill", "Wiederherstellungsübung"),
    "week.drill.failed": (
        "The restore drill of {when} failed: the newest backups could not be restored into isolation and "
        "checked.",
        "Die Wiederherstellungsübung vom {when} ist fehlgeschlagen: Die neuesten Sicherungen liessen sich "
        "nicht isoliert wiederherstellen und prüfen.",
    ),
    "week.drill.slow": (
        "The restore drill of {when} restored the school, but only after {rto} minutes (target: at most "
        "{target}).",
        "Die Wiederherstellungsübung vom {when} hat die Schule wiederhergestellt, aber erst nach {rto} "
        "Minuten (Ziel: höchstens {target}).",
    ),
    "week.drill.left": (
        "The restore drill of {when} passed, but left resources behind (they cost money until deleted).",
        "Die Wiederherstellungsübung vom {when} ist bestanden, hat aber Ressourcen zurückgelassen (sie kosten "
        "Geld, bis sie gelöscht sind).",
    ),
    "week.drill.overdue": (
        "The last restore drill ran on {when}, more than half a year ago: the twice-yearly drill did not run.",
        "Die letzte Wiederherstellungsübung lief am {when}, vor mehr als einem halben Jahr: Die halbjährliche "
        "Übung lief nicht.",
    ),
    "week.drill.details": (
        "What failed and why: {record} in the backup bucket (backupctl drill status).",
        "Was fehlschlug und warum: {record} im Sicherungs-Bucket (backupctl drill status).",
    ),
    "next.drill": (
        "See which phase failed and why, fix it, then run the drill again",
        "Sehen Sie nach, welcher Schritt warum fehlschlug, beheben Sie es und starten Sie die Übung erneut",
    ),
    "reason.DrillFailed": ("the restore drill failed", "die Wiederherstellungsübung ist fehlgeschlagen"),
    "reason.DrillRtoExceeded": (
        "the restore drill took longer than its target",
        "die Wiederherstellungsübung brauchte länger als ihr Ziel",
    ),
    "reason.DrillLeftovers": (
        "the daily cleanup removed {value} leftover(s) of a restore drill",
        "die tägliche Aufräumung hat {value} Überbleibsel einer Wiederherstellungsübung entfernt",
    ),
    # --- its alarms ------------------------------------------------------------------------------
    "alarm.DrillFailed": (
        "The restore drill failed: the newest backups could not be restored into isolation and checked. "
        "Its mail and 'backupctl drill status' say which phase failed and why. Fix it and run "
        "'backupctl drill start'.",
        "Die Wiederherstellungsübung ist fehlgeschlagen: Die neuesten Sicherungen liessen sich nicht isoliert "
        "wiederherstellen und prüfen. Ihre Mail und 'backupctl drill status' nennen den Schritt und den Grund. "
        "Beheben Sie ihn und starten Sie 'backupctl drill start'.",
    ),
    "alarm.DrillRtoExceeded": (
        "The restore drill restored the school, but it took longer than the target of {target} minutes. "
        "'backupctl drill status' shows which phase took the time.",
        "Die Wiederherstellungsübung hat die Schule wiederhergestellt, aber länger als das Ziel von {target} "
        "Minuten gebraucht. 'backupctl drill status' zeigt, welcher Schritt die Zeit brauchte.",
    ),
    "alarm.DrillLeftovers": (
        "The daily cleanup found resources of a restore drill that should have been deleted and removed "
        "them (its mail lists them). If this repeats, check the drill's teardown in the Step Functions console.",
        "Die tägliche Aufräumung hat Ressourcen einer Wiederherstellungsübung gefunden, die schon gelöscht sein "
        "sollten, und sie entfernt (ihre Mail nennt sie). Wiederholt sich das, prüfen Sie den Abbau der Übung "
        "in der Step-Functions-Konsole.",
    ),
    # --- backupctl drill -------------------------------------------------------------------------
    "cli.drill.started": (
        "Restore drill started: {execution}. It takes about {minutes} minutes; 'backupctl drill status' "
        "follows it.",
        "Wiederherstellungsübung gestartet: {execution}. Sie dauert etwa {minutes} Minuten; "
        "'backupctl drill status' verfolgt sie.",
    ),
    "cli.drill.already_running": (
        "A restore drill is already running ({execution}); wait for it (backupctl drill status).",
        "Eine Wiederherstellungsübung läuft bereits ({execution}); warten Sie sie ab (backupctl drill status).",
    ),
    "cli.drill.no_machine": (
        "The restore drill is not deployed in stack {stack} (restore_drill.enabled is false, or cdk deploy "
        "has not run since it was switched on).",
        "Die Wiederherstellungsübung ist im Stack {stack} nicht eingerichtet (restore_drill.enabled ist false, "
        "oder cdk deploy lief seit dem Einschalten nicht).",
    ),
    "cli.drill.running": ("Running since {when}: {execution}.", "Läuft seit {when}: {execution}."),
    "cli.drill.none": ("No restore drill has run yet.", "Es lief noch keine Wiederherstellungsübung."),
    "cli.drill.last": (
        "Last drill {when}: {result}; recovery time {rto} (target: {target} minutes).",
        "Letzte Übung {when}: {result}; Wiederherstellungszeit {rto} (Ziel: {target} Minuten).",
    ),
    "cli.drill.passed": ("passed", "bestanden"),
    "cli.drill.failed": ("FAILED", "FEHLGESCHLAGEN"),
    "cli.drill.minutes": ("{n} minutes", "{n} Minuten"),
    "cli.drill.no_rto": ("not reached", "nicht erreicht"),
    "cli.drill.leftovers": ("Not deleted yet: {ids}", "Noch nicht gelöscht: {ids}"),
}

"""Every sentence schoolbackup writes to the admin, in English and German: one catalogue.

The weekly mail, verify's problem sentences, the state table's reasons, the alarm descriptions (the
stack reads them at synth time), the dump's failure mail and ``backupctl status`` take their words
from here; ``tests/unit/test_messages.py`` renders every entry in both languages and fails on a
missing, untranslated or mis-placeholdered one. Standard library only (the stack imports it).

German is written for Swiss schools: "Sicherung", "Wiederherstellung", no "ß", dates ``30.11.2026``,
times ``01:30`` with the timezone named once.

A :class:`Msg` is a sentence not yet rendered: a key and its values (which may be other messages).
Code that knows the language calls :func:`say`; code that does not yet know it keeps the ``Msg``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from lambdas.common.contracts import JOB_OF_KIND, KIND_DUMP, dump_log_group_name
from lambdas.common.texts import (
    cli_common,
    cli_files,
    cli_restore,
    cli_simulate,
    drill,
    iam_review,
    offsite,
    offsite_checks,
)

LANGUAGES: Final = ("en", "de")
QUOTA_ALARM_PERCENT: Final = 80  # the RDS snapshot quota alarm, and a problem in the weekly mail

# key: (English, German). Placeholders in braces; both texts name the same ones.
_SYSTEM: Final[Mapping[str, tuple[str, str]]] = {
    # --- the weekly mail -------------------------------------------------------------------------
    "mail.title": ("schoolbackup weekly report", "schoolbackup Wochenbericht"),
    "mail.times_in": ("All times in {zone}.", "Alle Zeitangaben in {zone}."),
    "mail.all_ok": (
        "Everything is fine: every backup is there, fresh and checked.",
        "Alles in Ordnung: Alle Sicherungen sind vorhanden, aktuell und geprüft.",
    ),
    "mail.subject_ok": ("everything is fine", "alles in Ordnung"),
    "mail.subject_solved": (
        "everything is fine again ({n} alarm(s) this week)",
        "wieder alles in Ordnung ({n} Alarm(e) diese Woche)",
    ),
    "mail.subject_one": ("1 problem needs you", "1 Problem braucht Sie"),
    "mail.subject_many": ("{n} problems need you", "{n} Probleme brauchen Sie"),
    "mail.attention_one": (
        "One problem needs your attention. What to do is written under it.",
        "Ein Problem braucht Ihre Aufmerksamkeit. Was zu tun ist, steht darunter.",
    ),
    "mail.attention_many": (
        "{n} problems need your attention. What to do is written under each.",
        "{n} Probleme brauchen Ihre Aufmerksamkeit. Was zu tun ist, steht jeweils darunter.",
    ),
    "mail.problems": ("What needs your attention", "Was Ihre Aufmerksamkeit braucht"),
    "mail.resolved": ("Solved again this week", "Diese Woche wieder behoben"),
    "mail.what_to_do": ("What to do", "Was tun"),
    "mail.run": ("Command", "Befehl"),
    "mail.open_console": ("Open in the AWS console", "In der AWS-Konsole öffnen"),
    "mail.backups": ("Backups", "Sicherungen"),
    "mail.server": ("Server", "Server"),
    "mail.database": ("Database", "Datenbank"),
    "mail.newest": (
        "newest {when}, {age} old (target: at most {target})",
        "neueste vom {when}, {age} alt (Ziel: höchstens {target})",
    ),
    "mail.none": (
        "no good backup found (target: at most {target})",
        "keine gute Sicherung gefunden (Ziel: höchstens {target})",
    ),
    "mail.ok": ("OK", "OK"),
    "mail.problem": ("PROBLEM", "PROBLEM"),
    "mail.strip": ("Last 30 days, one mark per day", "Letzte 30 Tage, ein Zeichen pro Tag"),
    "mail.strip_summary": (
        "{good} of {days} days checked and good",
        "{good} von {days} Tagen geprüft und gut",
    ),
    "mail.strip_bad_days": ("problem on {dates}", "Problem am {dates}"),
    "mail.strip_unchecked": ("{n} not checked", "{n} nicht geprüft"),
    "mail.legend_good": ("checked and good", "geprüft und gut"),
    "mail.legend_bad": ("problem", "Problem"),
    "mail.legend_none": ("not checked", "nicht geprüft"),
    "mail.kept": (
        "kept: {kept} (the retention policy keeps {policy})",
        "aufbewahrt: {kept} (die Aufbewahrungsregel behält {policy})",
    ),
    "mail.last_verify": ("last check: {when}, {result}", "letzte Prüfung: {when}, {result}"),
    "mail.passed": ("passed", "bestanden"),
    "mail.failed": ("failed", "fehlgeschlagen"),
    "mail.restore": ("Restore test", "Wiederherstellungstest"),
    "mail.restore_ok": (
        "{when}: passed in {seconds} (dump {dump})",
        "{when}: bestanden in {seconds} (Dump {dump})",
    ),
    "mail.restore_bad": ("{when}: FAILED after {seconds}", "{when}: FEHLGESCHLAGEN nach {seconds}"),
    "mail.restore_none": ("no restore test was recorded", "kein Wiederherstellungstest aufgezeichnet"),
    "mail.quota": ("Database snapshot quota", "Kontingent für Datenbank-Snapshots"),
    "mail.quota_value": ("{used} of {limit} used ({percent} %)", "{used} von {limit} belegt ({percent} %)"),
    "mail.quota_unknown": ("could not be read", "konnte nicht gelesen werden"),
    "mail.alarms": ("Alarms this week", "Alarme dieser Woche"),
    "mail.alarms_none": ("none", "keine"),
    "mail.alarm_line": ("{when} {name}: {reason}", "{when} {name}: {reason}"),
    "mail.notes": ("Notes", "Hinweise"),
    "mail.ses_refused": (
        "SES could not send from {sender} ({code}), so this mail came through the alarm topic: is the "
        "sender verified in SES?",
        "SES konnte nicht von {sender} senden ({code}), deshalb kam diese Mail über das Alarm-Thema: Ist "
        "der Absender in SES verifiziert?",
    ),
    "mail.hour": ("1 hour", "1 Stunde"),
    "mail.hours": ("{n} hours", "{n} Stunden"),
    "mail.days": ("{n} days", "{n} Tage"),
    "mail.footer": (
        "Sent every Monday by schoolbackup. Alarms are sent at once, by a separate e-mail.",
        "Jeden Montag von schoolbackup verschickt. Alarme kommen sofort, mit einer eigenen E-Mail.",
    ),
    "kind.dump": ("Files and database dump", "Dateien und Datenbank-Dump"),
    "kind.rds": ("Database snapshot", "Datenbank-Snapshot"),
    "kind.ami": ("Server image (AMI)", "Server-Abbild (AMI)"),
    # --- one problem of the week (a finding), grouped by cause -----------------------------------
    "finding.title": ("{kind}: {source}", "{kind}: {source}"),
    "finding.alarm": (
        "Alarm {name} went off on {when}: {reason}.",
        "Alarm {name} wurde am {when} ausgelöst: {reason}.",
    ),
    "finding.alarm_times": (
        "Alarm {name} went off {n} times this week, last on {when}: {reason}.",
        "Alarm {name} wurde diese Woche {n}-mal ausgelöst, zuletzt am {when}: {reason}.",
    ),
    "finding.alarm_title": ("Alarm {name}", "Alarm {name}"),
    "finding.alarm_still": (
        "It is still in alarm.",
        "Er ist immer noch im Alarmzustand.",
    ),
    "finding.alarm_ok_again": (
        "Everything it watches is fine again now.",
        "Alles, was er überwacht, ist inzwischen wieder in Ordnung.",
    ),
    "finding.too_many": (
        "{kept} backups are kept, but the retention policy keeps only {policy}: is the prune job running?",
        "{kept} Sicherungen sind aufbewahrt, die Aufbewahrungsregel behält aber nur {policy}: "
        "Läuft das Aufräumen (prune)?",
    ),
    "finding.restore_title": ("Restore test", "Wiederherstellungstest"),
    "finding.restore_failed": (
        "The restore test of {when} failed after {seconds}.",
        "Der Wiederherstellungstest vom {when} ist nach {seconds} fehlgeschlagen.",
    ),
    "finding.restore_details": (
        "What was wrong with each file is written in the record {record}.",
        "Was bei jeder Datei nicht stimmte, steht (auf Englisch) im Bericht {record}.",
    ),
    "finding.restore_missing": (
        "No restore test has been recorded yet.",
        "Es ist noch kein Wiederherstellungstest aufgezeichnet.",
    ),
    "finding.restore_old": (
        "The last restore test ran on {when}, more than a week ago.",
        "Der letzte Wiederherstellungstest lief am {when}, vor mehr als einer Woche.",
    ),
    "finding.quota_title": ("Database snapshot quota", "Kontingent für Datenbank-Snapshots"),
    "finding.quota": (
        "{used} of {limit} manual database snapshots are used ({percent} %); when the quota is full, no "
        "database snapshot can be made.",
        "{used} von {limit} manuellen Datenbank-Snapshots sind belegt ({percent} %); ist das Kontingent "
        "voll, kann kein Datenbank-Snapshot mehr erstellt werden.",
    ),
    "finding.unconfirmed_title": ("Alarm mail to {address}", "Alarm-Mail an {address}"),
    "finding.unconfirmed": (
        "{address} gets no alarm: its subscription to the alarm topic is not confirmed.",
        "{address} erhält keine Alarme: Das Abonnement des Alarm-Themas ist nicht bestätigt.",
    ),
    "finding.selection_title": ("What is backed up", "Was gesichert wird"),
    "finding.verify_silent_title": ("Daily check", "Tägliche Prüfung"),
    "finding.verify_silent": (
        "The daily check (verify) has not reported for {days} days.",
        "Die tägliche Prüfung (verify) hat sich seit {days} Tagen nicht gemeldet.",
    ),
    # --- what to do next -------------------------------------------------------------------------
    "next.dump": (
        "Open the dump's output in the CloudWatch log group {log_group}: its last line names the failed "
        "step. After fixing the cause, make a new dump with the command below.",
        "Öffnen Sie die Ausgabe des Dumps in der CloudWatch-Protokollgruppe {log_group}: Die letzte Zeile "
        "nennt den fehlgeschlagenen Schritt. Beheben Sie die Ursache und erstellen Sie dann mit dem Befehl "
        "unten einen neuen Dump.",
    ),
    "next.job": (
        "Open the log of the {job} job: the error names the cause. After fixing it, run the job again with "
        "the command below; it never creates a backup twice.",
        "Öffnen Sie das Protokoll des Jobs {job}: Die Fehlermeldung nennt die Ursache. Beheben Sie sie und "
        "starten Sie den Job dann mit dem Befehl unten neu; er erstellt nie eine Sicherung doppelt.",
    ),
    "next.prune": (
        "The prune job should have removed these backups. Open its log, and see what it would delete "
        "with the command below.",
        "Das Aufräumen (prune) hätte diese Sicherungen entfernen sollen. Öffnen Sie sein Protokoll und "
        "sehen Sie mit dem Befehl unten nach, was es löschen würde.",
    ),
    "next.restore_failed": (
        "Read the record {record} in the backup bucket; make a fresh dump, then test again with the "
        "command below.",
        "Lesen Sie den Bericht {record} im Sicherungs-Bucket; erstellen Sie einen neuen Dump und testen "
        "Sie dann mit dem Befehl unten erneut.",
    ),
    "next.restore_missing": (
        "Run the restore test now with the command below, and check that its weekly schedule exists.",
        "Starten Sie den Wiederherstellungstest jetzt mit dem Befehl unten und prüfen Sie, ob sein "
        "wöchentlicher Zeitplan besteht.",
    ),
    "next.quota": (
        "Check that the prune job runs (command below), delete manual database snapshots that schoolbackup "
        "did not make, or ask AWS for a higher limit (Service Quotas).",
        "Prüfen Sie, ob das Aufräumen (prune) läuft (Befehl unten), löschen Sie manuelle Datenbank-"
        "Snapshots, die nicht von schoolbackup stammen, oder beantragen Sie bei AWS ein höheres "
        "Kontingent (Service Quotas).",
    ),
    "next.unconfirmed": (
        'Click the link in the mail "AWS Notification - Subscription Confirmation", or subscribe the '
        "address again on the alarm topic.",
        "Klicken Sie auf den Link in der Mail «AWS Notification - Subscription Confirmation» oder tragen "
        "Sie die Adresse beim Alarm-Thema neu ein.",
    ),
    "next.selection": (
        "Check what is selected for backup (the tag {tag} on the instances, or the ids listed in cdk.json), "
        "then deploy again.",
        "Prüfen Sie, was zur Sicherung ausgewählt ist (das Tag {tag} an den Instanzen oder die in cdk.json "
        "aufgeführten IDs), und führen Sie danach das Deployment erneut aus.",
    ),
    "next.verify": (
        "Is the verify job running? Open its log, or run it now with the command below.",
        "Läuft der Job verify? Öffnen Sie sein Protokoll oder starten Sie ihn jetzt mit dem Befehl unten.",
    ),
    # --- verify's problem sentences --------------------------------------------------------------
    "verify.raised": ("{n} backup problem(s): {problems}", "{n} Problem(e) mit Sicherungen: {problems}"),
    "verify.what": ("{kind} of {source}", "{kind} von {source}"),
    "verify.kind.dump": ("dump", "Dump"),
    "verify.kind.rds": ("RDS snapshot", "RDS-Snapshot"),
    "verify.kind.ami": ("AMI", "AMI"),
    "verify.no_backup": ("no backup found{searched}.", "Keine Sicherung gefunden{searched}."),
    "verify.searched": (" in the last {days} days ({where})", " in den letzten {days} Tagen ({where})"),
    "verify.newest_failed": (
        "the newest backup {id} ({when}) {detail}.",
        "Die neueste Sicherung {id} ({when}) {detail}.",
    ),
    "verify.none_usable": (
        "none of the {n} backups found is usable.",
        "Keine der {n} gefundenen Sicherungen ist verwendbar.",
    ),
    "verify.stale": (
        "the newest good backup {id} is {age} hours old ({when}); the target is at most {target} hours.",
        "Die neueste gute Sicherung {id} ist {age} Stunden alt ({when}); das Ziel ist höchstens {target} "
        "Stunden.",
    ),
    "verify.prune_overdue": (
        "{n} backup(s) older than {days} days are still there (oldest {id}, {when}); the prune job should "
        "have removed them. Is it running? Look at its log.",
        "{n} Sicherung(en), älter als {days} Tage, sind noch vorhanden (älteste {id}, {when}); das "
        "Aufräumen (prune) hätte sie entfernen sollen. Läuft es? Sehen Sie in seinem Protokoll nach.",
    ),
    "verify.note": ("the newest good backup {id} {note}", "Die neueste gute Sicherung {id} {note}"),
    "verify.inconsistent": (
        "holds {n} table(s) that are not transactional ({tables}): they were dumped a moment apart from "
        "the rest, so rows that belong together may not match. Convert them to InnoDB (ALTER TABLE ... "
        "ENGINE=InnoDB) or set dump.mysql_consistency: lock-tables.",
        "enthält {n} Tabelle(n), die nicht transaktional sind ({tables}): Sie wurden einen Moment "
        "getrennt vom Rest gesichert, zusammengehörige Zeilen passen deshalb vielleicht nicht zueinander. "
        "Stellen Sie sie auf InnoDB um (ALTER TABLE ... ENGINE=InnoDB) oder setzen Sie "
        "dump.mysql_consistency: lock-tables.",
    ),
    "verify.and_more": ("{shown} and {n} more", "{shown} und {n} weitere"),
    "verify.missing_ec2": (
        "{id}: listed in EC2_INSTANCE_IDS but no such instance exists in this region (or it is terminated).",
        "{id}: in EC2_INSTANCE_IDS aufgeführt, aber in dieser Region gibt es keine solche Instanz "
        "(oder sie ist beendet).",
    ),
    "verify.missing_rds": (
        "{id}: listed in RDS_INSTANCE_IDS but no such DB instance exists in this region.",
        "{id}: in RDS_INSTANCE_IDS aufgeführt, aber in dieser Region gibt es keine solche Datenbankinstanz.",
    ),
    "verify.aurora": (
        "{id}: Aurora clusters are not supported yet (cluster snapshots are not made by schoolbackup).",
        "{id}: Aurora-Cluster werden noch nicht unterstützt (schoolbackup erstellt keine Cluster-Snapshots).",
    ),
    "verify.nothing_selected": (
        "No EC2 or RDS instance is selected for backup (tag {tag} or listed ids), so nothing is backed up.",
        "Keine EC2- oder RDS-Instanz ist zur Sicherung ausgewählt (Tag {tag} oder aufgeführte IDs), es "
        "wird also nichts gesichert.",
    ),
    # --- the state table's reasons: the end of a sentence about one backup ------------------------
    "state.still": ("is still {raw}", "ist noch im Zustand «{raw}»"),
    "state.has_status": ("has status '{raw}'", "hat den Status «{raw}»"),
    "state.has_state": ("has state '{raw}'", "hat den Zustand «{raw}»"),
    "state.going": ("is {raw}", "ist im Zustand «{raw}»"),
    "state.unknown_verify": (
        "{detail}: schoolbackup does not know this state, so it is not counted as good",
        "{detail}: schoolbackup kennt diesen Zustand nicht und zählt die Sicherung deshalb nicht als gut",
    ),
    "state.unknown_prune": (
        "{detail}: schoolbackup does not know this state and never deletes what it does not know",
        "{detail}: schoolbackup kennt diesen Zustand nicht und löscht nie, was es nicht kennt",
    ),
    "state.no_ebs": ("has no EBS snapshot", "hat keinen EBS-Snapshot"),
    "state.ebs_missing": (
        "is missing its EBS snapshot(s) {ids}",
        "hat fehlende EBS-Snapshots ({ids})",
    ),
    "state.ebs_failed": ("has failed EBS snapshot(s) {ids}", "hat fehlgeschlagene EBS-Snapshots ({ids})"),
    "state.ebs_unknown": ("has EBS snapshot(s) in state {raw}", "hat EBS-Snapshots im Zustand «{raw}»"),
    "state.ebs_pending": (
        "has EBS snapshot(s) still {raw}",
        "hat EBS-Snapshots, die noch im Zustand «{raw}» sind",
    ),
    "state.no_manifest": (
        "has no manifest.json (a dump without one is a failed dump)",
        "hat keine manifest.json (ein Dump ohne sie gilt als fehlgeschlagen)",
    ),
    "state.manifest_unreadable": (
        "has a manifest that could not be read",
        "hat eine manifest.json, die nicht gelesen werden konnte",
    ),
    "state.manifest_invalid": (
        "has an invalid manifest: {error}",
        "hat eine ungültige manifest.json: {error}",
    ),
    "state.manifest_error": (
        "manifest could not be read ({code})",
        "hat eine manifest.json, die nicht gelesen werden konnte ({code})",
    ),
    "state.manifest_status": ("reports status '{status}'", "meldet den Status «{status}»"),
    "state.damaged": ("is damaged: {what}", "ist beschädigt: {what}"),
    "state.object_missing": ("{name} is missing", "{name} fehlt"),
    "state.object_size": (
        "{name} has {size} bytes, the manifest says {expected}",
        "{name} hat {size} Bytes, laut Manifest {expected}",
    ),
    # --- alarms: what each means (its description) and what fired it (the report) -----------------
    "alarm.RestoreTestFailed": (
        "The weekly restore test found a dump that could not be restored (checksum mismatch, truncated or "
        "unreadable file). Read the record under reports/restore-tests/ in the backup bucket, then make a "
        "fresh dump (Systems Manager > Run Command > the schoolbackup dump document, or backupctl run dump) "
        "and run the restore test again (backupctl run restore_test).",
        "Der wöchentliche Wiederherstellungstest hat einen Dump gefunden, der sich nicht wiederherstellen "
        "liess (Prüfsumme falsch, Datei abgeschnitten oder unlesbar). Lesen Sie den Bericht unter "
        "reports/restore-tests/ im Sicherungs-Bucket, erstellen Sie dann einen neuen Dump (Systems Manager "
        "> Run Command > das schoolbackup-Dump-Dokument, oder backupctl run dump) und starten Sie den "
        "Wiederherstellungstest erneut (backupctl run restore_test).",
    ),
    "alarm.VerificationFailed": (
        "The daily backup check found a missing, stale or damaged backup. Open the verify function's log "
        "in CloudWatch, or run backupctl status: each problem names the server or database and what is "
        "wrong.",
        "Die tägliche Prüfung hat eine fehlende, veraltete oder beschädigte Sicherung gefunden. Öffnen Sie "
        "das Protokoll der Funktion verify in CloudWatch oder führen Sie backupctl status aus: Jedes "
        "Problem nennt den Server oder die Datenbank und was nicht stimmt.",
    ),
    "alarm.ReplicationFailed": (
        "S3 could not replicate a dump to the offsite copy bucket. Most often the copy bucket or its key "
        "(the offsite stack) was changed or deleted: deploy both stacks again with cdk deploy --all. The "
        "object's replication status in the S3 console (Replication status FAILED) names which dump.",
        "S3 konnte einen Dump nicht in den Kopie-Bucket der Auslagerung replizieren. Meist wurde der "
        "Kopie-Bucket oder sein Schlüssel (der Offsite-Stack) geändert oder gelöscht: Stellen Sie beide "
        "Stacks mit cdk deploy --all erneut bereit. Der Replikationsstatus des Objekts in der S3-Konsole "
        "(FAILED) nennt, welcher Dump betroffen ist.",
    ),
    "alarm.ReplicationLate": (
        "A dump has waited longer than offsite.replication_alarm_minutes to reach the offsite copy bucket. "
        "It usually catches up by itself; if the alarm stays, look at the replication metrics of the backup "
        "bucket in the S3 console and at the alarm ReplicationFailed of the home stack.",
        "Ein Dump wartet länger als offsite.replication_alarm_minutes darauf, im Kopie-Bucket der "
        "Auslagerung anzukommen. Meist holt die Replikation das von selbst auf; bleibt der Alarm, prüfen "
        "Sie die Replikationsmetriken des Sicherungs-Buckets in der S3-Konsole und den Alarm "
        "ReplicationFailed des Heimat-Stacks.",
    ),
    "alarm.RdsSnapshotQuota": (
        "More than {percent} % of the RDS manual snapshot quota is used; when it is full, no database "
        "snapshot can be made. Check that the prune job runs, delete old manual snapshots that "
        "schoolbackup did not make, or ask AWS (Service Quotas) for a higher limit.",
        "Mehr als {percent} % des Kontingents für manuelle RDS-Snapshots sind belegt; ist es voll, kann "
        "kein Datenbank-Snapshot mehr erstellt werden. Prüfen Sie, ob das Aufräumen (prune) läuft, löschen "
        "Sie alte manuelle Snapshots, die nicht von schoolbackup stammen, oder beantragen Sie bei AWS "
        "(Service Quotas) ein höheres Kontingent.",
    ),
    "alarm.errors": (
        "The schoolbackup job {job} failed. Open its log group in CloudWatch (the error names what went "
        "wrong and which server or database), fix the cause, then run it again: backupctl run {job}, or "
        'in the Lambda console Test with the event {{"scheduled_time": "<the missed run, e.g. '
        '2026-11-27T02:30:00Z>"}}, which repeats that run and never creates a backup twice.',
        "Der schoolbackup-Job {job} ist fehlgeschlagen. Öffnen Sie seine Protokollgruppe in CloudWatch "
        "(die Fehlermeldung nennt die Ursache und den Server oder die Datenbank), beheben Sie die Ursache "
        "und starten Sie ihn dann neu: backupctl run {job}, oder in der Lambda-Konsole «Test» mit dem "
        'Ereignis {{"scheduled_time": "<der verpasste Lauf, z. B. 2026-11-27T02:30:00Z>"}}; so wird '
        "genau dieser Lauf wiederholt, und keine Sicherung entsteht doppelt.",
    ),
    "alarm.backup_age": (
        "The newest good {what} of some server or database is older than {hours} hours, or the daily check "
        "did not run for two days. The verify function's log (or backupctl status) names which one. "
        "{rerun}",
        "Die neueste gute Sicherung ({what}) eines Servers oder einer Datenbank ist älter als {hours} "
        "Stunden, oder die tägliche Prüfung ist zwei Tage lang nicht gelaufen. Das Protokoll der Funktion "
        "verify (oder backupctl status) nennt, welche. {rerun}",
    ),
    "alarm.rerun_dump": (
        "The dump runs on the server through Systems Manager: open Systems Manager, Run Command, Command "
        "history, and the last run of the schoolbackup dump document; its output is in the CloudWatch log "
        "group {log_group} and its last line names the failed step. After fixing the cause, run the "
        "document again (Run command, target the server, leave ScheduledTime empty) or backupctl run dump.",
        "Der Dump läuft über Systems Manager auf dem Server: Öffnen Sie Systems Manager, Run Command, "
        "Befehlsverlauf und den letzten Lauf des schoolbackup-Dump-Dokuments; seine Ausgabe steht in der "
        "CloudWatch-Protokollgruppe {log_group}, die letzte Zeile nennt den fehlgeschlagenen Schritt. "
        "Beheben Sie die Ursache und starten Sie das Dokument erneut (Run command, den Server als Ziel, "
        "ScheduledTime leer lassen) oder backupctl run dump.",
    ),
    "alarm.rerun_job": (
        "Check the log of the job that makes it, then run that job again (backupctl run {job}).",
        "Sehen Sie im Protokoll des Jobs nach, der sie erstellt, und starten Sie ihn dann erneut "
        "(backupctl run {job}).",
    ),
    "alarm.schedule-dead-letters": (
        "A scheduled backup job could not be started even after retries (its event is in the schoolbackup "
        "dead-letter queue). Open the SQS queue in the console, read the message to see which job, check that "
        "its Lambda function or server still exists, then run the job by hand (backupctl run <job>) and "
        "purge the queue.",
        "Ein geplanter Sicherungsjob konnte auch nach mehreren Versuchen nicht gestartet werden (sein "
        "Ereignis liegt in der Dead-Letter-Queue von schoolbackup). Öffnen Sie die SQS-Queue in der Konsole, "
        "lesen Sie in der Nachricht, welcher Job es war, prüfen Sie, ob seine Lambda-Funktion oder sein "
        "Server noch existiert, starten Sie den Job dann von Hand (backupctl run <job>) und leeren Sie die "
        "Queue.",
    ),
    "alarm.what.dump": ("files and database dump", "Dateien und Datenbank-Dump"),
    "alarm.what.rds": ("database snapshot", "Datenbank-Snapshot"),
    "alarm.what.ami": ("server image (AMI)", "Server-Abbild (AMI)"),
    "reason.VerificationFailed": (
        "the daily check found {value} problem(s)",
        "die tägliche Prüfung hat {value} Problem(e) gefunden",
    ),
    "reason.RestoreTestFailed": (
        "the weekly restore test failed",
        "der wöchentliche Wiederherstellungstest ist fehlgeschlagen",
    ),
    "reason.RdsSnapshotQuota": (
        "{value} % of the database snapshot quota was used (the limit for this alarm is {threshold} %)",
        "{value} % des Kontingents für Datenbank-Snapshots waren belegt (die Grenze dieses Alarms ist "
        "{threshold} %)",
    ),
    "reason.backup_age": (
        "the newest good {what} of a server or database was {value} hours old (target: at most "
        "{threshold} hours)",
        "die neueste gute Sicherung ({what}) eines Servers oder einer Datenbank war {value} Stunden alt "
        "(Ziel: höchstens {threshold} Stunden)",
    ),
    "reason.no_data": (
        "no value arrived from the daily check (missing values count as a problem)",
        "von der täglichen Prüfung kam kein Wert (fehlende Werte zählen als Problem)",
    ),
    "reason.errors": (
        "the job {job} failed ({value} error(s))",
        "der Job {job} ist fehlgeschlagen ({value} Fehler)",
    ),
    "reason.other": ("see its description in CloudWatch", "siehe seine Beschreibung in CloudWatch"),
    # --- the dump's failure mail (EventBridge fills in <instance>, <status>, <command>) -----------
    "dump.failed_mail": (
        "The schoolbackup dump on server {instance} did not succeed (status: {status}). Document "
        "{document}, command id {command}. The output is in the CloudWatch log group {log_group} "
        "(console: CloudWatch, Log groups, {log_group}, stream {command}/{instance}/dump/stdout). The last "
        "line of the log says which step failed ('schoolbackup-dump: FAILED at step ...' followed by the "
        "reason). This run left no complete dump (no manifest.json). After fixing the cause, run it again: "
        "backupctl run dump, or in the console Systems Manager, Run Command, Run command, document "
        "{document}, target this server (leave ScheduledTime empty).",
        "Der schoolbackup-Dump auf dem Server {instance} war nicht erfolgreich (Status: {status}). "
        "Dokument {document}, Befehls-ID {command}. Die Ausgabe steht in der CloudWatch-Protokollgruppe "
        "{log_group} (Konsole: CloudWatch, Log groups, {log_group}, Stream "
        "{command}/{instance}/dump/stdout). Die letzte Zeile des Protokolls nennt den fehlgeschlagenen "
        "Schritt ('schoolbackup-dump: FAILED at step ...' gefolgt vom Grund). Dieser Lauf hat keinen "
        "vollständigen Dump hinterlassen (keine manifest.json). Beheben Sie die Ursache und starten Sie "
        "ihn dann erneut: backupctl run dump, oder in der Konsole Systems Manager, Run Command, Run "
        "command, Dokument {document}, diesen Server als Ziel (ScheduledTime leer lassen).",
    ),
    # --- backupctl status ------------------------------------------------------------------------
    "status.backups": ("Backups ({stack}, {region})", "Sicherungen ({stack}, {region})"),
    "status.columns": ("source|kind|newest|state|age / target|", "Quelle|Art|neueste|Zustand|Alter / Ziel|"),
    # the column added with offsite copies: the newest copy's state and age / target
    "status.offsite_column": ("offsite ({region})", "ausser Haus ({region})"),
    "status.none": ("none", "keine"),
    "status.weekdays": ("Mon|Tue|Wed|Thu|Fri|Sat|Sun", "Mo|Di|Mi|Do|Fr|Sa|So"),
    "status.state.usable": ("usable", "verwendbar"),
    "status.state.pending": ("pending", "in Arbeit"),
    "status.state.failed": ("failed", "fehlgeschlagen"),
    "status.last_verify": ("Last verification: {value}", "Letzte Prüfung: {value}"),
    "status.verify_none": ("none in the last 3 days", "keine in den letzten 3 Tagen"),
    "status.verify_run": ("{when} ({n} failure(s))", "{when} ({n} Fehler)"),
    "status.last_restore": ("Last restore test: {value}", "Letzter Wiederherstellungstest: {value}"),
    "status.restore_none": ("none yet", "noch keiner"),
    "status.restore_run": ("{when}: {result} in {seconds} s", "{when}: {result} in {seconds} s"),
    "status.last_drill": ("Last restore drill: {value}", "Letzte Wiederherstellungsübung: {value}"),
    "status.last_iam": ("Last IAM review: {value}", "Letzte IAM-Überprüfung: {value}"),
    "status.not_deployed": ("not deployed yet", "noch nicht eingerichtet"),
    "status.in_alarm": ("Alarms in ALARM: {names}", "Alarme im Alarmzustand: {names}"),
    "status.mail_to": ("Alarm mail to {address}: {state}", "Alarm-Mail an {address}: {state}"),
    "status.confirmed": ("confirmed", "bestätigt"),
    "status.not_confirmed": ("NOT CONFIRMED", "NICHT BESTÄTIGT"),
    "status.not_subscribed": ("NOT SUBSCRIBED", "NICHT ABONNIERT"),
    "status.next_runs": ("Next runs ({zone})", "Nächste Läufe ({zone})"),
    "status.next_columns": ("job|next run", "Job|nächster Lauf"),
    "status.all_good": (
        "All good: every backup is fresh and usable, and alarms reach everyone.",
        "Alles in Ordnung: Jede Sicherung ist aktuell und verwendbar, und die Alarme erreichen alle.",
    ),
    "status.no_topic": (
        "The alarm topic {name} does not exist: is the stack {stack} deployed here?",
        "Das Alarm-Thema {name} existiert nicht: Ist der Stack {stack} hier eingerichtet?",
    ),
    "status.not_subscribed_problem": (
        "{address} is not subscribed to the alarm topic: alarms do not reach it.",
        "{address} hat das Alarm-Thema nicht abonniert: Alarme erreichen diese Adresse nicht.",
    ),
}


def _merged(*parts: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    merged: dict[str, tuple[str, str]] = {}
    for part in parts:
        twice = merged.keys() & part.keys()
        if twice:
            raise ValueError(f"message keys defined twice: {sorted(twice)}")
        merged.update(part)
    return merged


# The one catalogue: the system's sentences and backupctl's (lambdas/common/texts/).
CATALOGUE: Final[Mapping[str, tuple[str, str]]] = _merged(
    _SYSTEM,
    cli_common.ENTRIES,
    cli_restore.ENTRIES,
    cli_files.ENTRIES,
    cli_simulate.ENTRIES,
    drill.ENTRIES,
    iam_review.ENTRIES,
    offsite_checks.ENTRIES,
    offsite.ENTRIES,
)


def _join(values: tuple[Msg, ...], language: str) -> str:
    return "; ".join(v.render(language) for v in values)


@dataclass(frozen=True)
class Msg:
    """One sentence of the catalogue with its values, rendered when the language is known."""

    key: str
    values: tuple[tuple[str, object], ...] = ()

    def render(self, language: str) -> str:
        en, de = CATALOGUE[self.key]
        template = de if language == "de" else en
        filled = {
            name: value.render(language)
            if isinstance(value, Msg)
            else _join(value, language)
            if isinstance(value, tuple)
            else value
            for name, value in self.values
        }
        return template.format(**filled)

    def __str__(self) -> str:
        return self.render("en")


def msg(key: str, **values: object) -> Msg:
    """The sentence ``key`` with ``values``; values may be messages or tuples of messages (joined by ``; ``)."""
    if key not in CATALOGUE:
        raise KeyError(f"no message {key!r} in lambdas/common/messages.py")
    return Msg(key, tuple(values.items()))


def say(key: str, language: str, **values: object) -> str:
    """The sentence ``key`` in ``language`` (``en`` or ``de``)."""
    return msg(key, **values).render(language)


def capital(sentence: str) -> str:
    """The sentence with its first letter upper case (a clause that now stands alone)."""
    return sentence[:1].upper() + sentence[1:]


def alarm_description(
    base: str,
    language: str,
    *,
    stack: str,
    hours: Mapping[str, int],
    quota_percent: int = QUOTA_ALARM_PERCENT,
    rto_target_minutes: int | None = None,
) -> str | None:
    """What an alarm of the stack means and what to do (its AlarmDescription; the report's next step)."""
    if base in (
        "RestoreTestFailed",
        "VerificationFailed",
        "schedule-dead-letters",
        "DrillFailed",
        "DrillLeftovers",
        "IamNewHighFindings",
        "ReplicationFailed",
        "ReplicationLate",
    ):
        return say(f"alarm.{base}", language)
    if base == "DrillRtoExceeded":
        return say("alarm.DrillRtoExceeded", language, target=rto_target_minutes or "?")
    if base == "RdsSnapshotQuota":
        return say("alarm.RdsSnapshotQuota", language, percent=quota_percent)
    if base.endswith("-errors"):
        return say("alarm.errors", language, job=base.removesuffix("-errors"))
    kind = base.removesuffix("-backup-age")
    if base.endswith("-backup-age") and kind in JOB_OF_KIND:
        rerun = (
            msg("alarm.rerun_dump", log_group=dump_log_group_name(stack))
            if kind == KIND_DUMP
            else msg("alarm.rerun_job", job=JOB_OF_KIND[kind])
        )
        what = msg(f"alarm.what.{kind}")
        return say("alarm.backup_age", language, what=what, hours=hours.get(kind, "?"), rerun=rerun)
    return None

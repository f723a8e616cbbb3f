"""The catalogue's entries for the monthly IAM review: its kinds of finding and what to do about each, the
weekly mail's section, the alarm, ``backupctl iam-review``. (The record's ``detail`` stays English data.)"""

from __future__ import annotations

from typing import Final

ENTRIES: Final[dict[str, tuple[str, str]]] = {
    # --- the kinds of finding (lambdas/common/jobs/iam_review.py) ---------------------------------
    "iam.kind.root-without-mfa": ("Root user without MFA", "Root-Benutzer ohne MFA"),
    "iam.kind.console-user-without-mfa": ("Console user without MFA", "Konsolen-Benutzer ohne MFA"),
    "iam.kind.access-key-old": ("Access key older than 90 days", "Zugriffsschlüssel älter als 90 Tage"),
    "iam.kind.access-key-unused": (
        "Access key unused for 90 days",
        "Zugriffsschlüssel seit 90 Tagen unbenutzt",
    ),
    "iam.kind.admin-access": ("Administrator access", "Administratorrechte"),
    "iam.kind.can-delete-backups": (
        "Can delete or alter the backups",
        "Kann die Sicherungen löschen oder verändern",
    ),
    "iam.kind.stack-role-drift": ("Role of the stack changed by hand", "Rolle des Stacks von Hand geändert"),
    # --- what to do about each --------------------------------------------------------------------
    "iam.todo.root-without-mfa": (
        "Sign in as the root user and add an MFA device (IAM console, Security credentials); then use the root "
        "user for emergencies only.",
        "Melden Sie sich als Root-Benutzer an und fügen Sie ein MFA-Gerät hinzu (IAM-Konsole, "
        "Sicherheitsanmeldeinformationen); benutzen Sie den Root-Benutzer danach nur noch im Notfall.",
    ),
    "iam.todo.console-user-without-mfa": (
        "Have the user add an MFA device, or remove the console password if the user does not need one.",
        "Lassen Sie die Person ein MFA-Gerät hinzufügen, oder entfernen Sie das Konsolen-Passwort, falls sie "
        "keines braucht.",
    ),
    "iam.todo.access-key-old": (
        "Rotate the key: create a new one, switch whatever uses it, then deactivate and delete the old one.",
        "Erneuern Sie den Schlüssel: einen neuen erstellen, alles darauf umstellen, dann den alten deaktivieren "
        "und löschen.",
    ),
    "iam.todo.access-key-unused": (
        "Deactivate the key; delete it if nothing breaks within a week.",
        "Deaktivieren Sie den Schlüssel; löschen Sie ihn, wenn innert einer Woche nichts ausfällt.",
    ),
    "iam.todo.admin-access": (
        "Check that this principal really needs full access; give it only the permissions it uses (IAM Access "
        "Analyzer can generate such a policy).",
        "Prüfen Sie, ob dieser Prinzipal wirklich vollen Zugriff braucht; geben Sie ihm nur die Berechtigungen, "
        "die er verwendet (IAM Access Analyzer kann eine solche Richtlinie erzeugen).",
    ),
    "iam.todo.can-delete-backups": (
        "Remove these permissions, or add an explicit Deny for them: only the prune function may delete "
        "backups, and only its own.",
        "Entfernen Sie diese Berechtigungen oder fügen Sie ein ausdrückliches Deny dafür hinzu: Nur die "
        "Funktion prune darf Sicherungen löschen, und nur ihre eigenen.",
    ),
    "iam.todo.stack-role-drift": (
        "Remove what was added by hand (IAM console, the role, Permissions), or add it to the stack's code if "
        "it is needed; a new deploy does not remove it.",
        "Entfernen Sie, was von Hand hinzugefügt wurde (IAM-Konsole, die Rolle, Berechtigungen), oder nehmen "
        "Sie es in den Code des Stacks auf, falls es gebraucht wird; ein neues Deployment entfernt es nicht.",
    ),
    "iam.severity.high": ("high", "hoch"),
    "iam.severity.medium": ("medium", "mittel"),
    "iam.severity.low": ("low", "tief"),
    # --- the weekly mail and backupctl status ------------------------------------------------------
    "iam.section": ("IAM review", "IAM-Überprüfung"),
    "iam.none": (
        "none recorded yet (it runs on the 1st of each month)",
        "noch keine aufgezeichnet (sie läuft am 1. jedes Monats)",
    ),
    "iam.summary": (
        "{month}: {high} high, {medium} medium, {low} low",
        "{month}: {high} hoch, {medium} mittel, {low} tief",
    ),
    "iam.new": ("{n} new since last month", "{n} neu seit dem Vormonat"),
    "iam.line": ("{kind} – {principal}", "{kind} bei {principal}"),
    "iam.finding_title": ("IAM review {month}", "IAM-Überprüfung {month}"),
    "iam.new_high_one": (
        "1 new high-risk finding since last month's review.",
        "1 neuer Befund mit hohem Risiko seit der Überprüfung des Vormonats.",
    ),
    "iam.new_high_many": (
        "{n} new high-risk findings since last month's review.",
        "{n} neue Befunde mit hohem Risiko seit der Überprüfung des Vormonats.",
    ),
    "next.iam": (
        "Read each finding with the command below; every one says what to do. The next review (on the 1st) "
        "shows whether the fix worked.",
        "Lesen Sie jeden Befund mit dem Befehl unten; jeder sagt, was zu tun ist. Die nächste Überprüfung "
        "(am 1.) zeigt, ob die Behebung gewirkt hat.",
    ),
    # --- the alarm ---------------------------------------------------------------------------------
    "alarm.IamNewHighFindings": (
        "The monthly IAM review found a high-risk finding that last month's review did not have (a user without "
        "MFA, admin access, someone who can delete the backups, or a role of the stack changed by hand). Run "
        "backupctl iam-review --last to see each finding and what to do.",
        "Die monatliche IAM-Überprüfung hat einen Befund mit hohem Risiko gefunden, den die Überprüfung des "
        "Vormonats nicht hatte (ein Benutzer ohne MFA, Administratorrechte, jemand, der die Sicherungen löschen "
        "kann, oder eine von Hand geänderte Rolle des Stacks). Führen Sie backupctl iam-review --last aus, um "
        "jeden Befund und das Vorgehen zu sehen.",
    ),
    "reason.IamNewHighFindings": (
        "the monthly IAM review found {value} new high-risk finding(s)",
        "die monatliche IAM-Überprüfung hat {value} neue(n) Befund(e) mit hohem Risiko gefunden",
    ),
    # --- backupctl iam-review ----------------------------------------------------------------------
    "cli.iam.title": ("IAM review {month} (made {when})", "IAM-Überprüfung {month} (erstellt {when})"),
    "cli.iam.no_findings": ("No findings: nothing needs you.", "Keine Befunde: Es ist nichts zu tun."),
    "cli.iam.none_yet": (
        "No IAM review is recorded yet in s3://{bucket}/reports/iam/: run backupctl iam-review (without --last).",
        "Noch keine IAM-Überprüfung in s3://{bucket}/reports/iam/ aufgezeichnet: Führen Sie backupctl "
        "iam-review (ohne --last) aus.",
    ),
    "cli.iam.repeated": (
        "This month's review had been made already; this is its record. The next one runs on the 1st.",
        "Die Überprüfung dieses Monats war schon gemacht; dies ist ihr Bericht. Die nächste läuft am 1.",
    ),
    "cli.iam.failed": ("The IAM review failed: {error}", "Die IAM-Überprüfung ist fehlgeschlagen: {error}"),
    "cli.iam.high": ("{n} high-risk finding(s) need you.", "{n} Befund(e) mit hohem Risiko brauchen Sie."),
}

"""The catalogue's entries for backupctl's shared messages (context, run, prune)."""

from __future__ import annotations

from typing import Final

ENTRIES: Final[dict[str, tuple[str, str]]] = {
    # --- what AWS (or the lack of it) says, for every command (context.py) -----------------------
    "cli.common.no_credentials": (
        "No AWS credentials found: log in with `aws sso login` or `aws configure` (or pass --profile), "
        "then run backupctl again.",
        "Keine AWS-Zugangsdaten gefunden: Melden Sie sich mit `aws sso login` oder `aws configure` an "
        "(oder geben Sie --profile an) und starten Sie backupctl dann erneut.",
    ),
    "cli.common.offsite_off": (
        "--from-region {region}: there are no offsite copies; offsite.enabled is false in cdk.json.",
        "--from-region {region}: Es gibt keine Kopien an einem zweiten Ort; offsite.enabled ist in cdk.json "
        "false.",
    ),
    "cli.common.offsite_other": (
        "--from-region {region}: the offsite copies are in {offsite} (offsite.region in cdk.json), not in "
        "{region}.",
        "--from-region {region}: Die Kopien am zweiten Ort liegen in {offsite} (offsite.region in cdk.json), "
        "nicht in {region}.",
    ),
    "cli.common.no_region": (
        "No AWS region is set: pass --region eu-central-2 or export AWS_REGION.",
        "Es ist keine AWS-Region eingestellt: Geben Sie --region eu-central-2 an oder setzen Sie die "
        "Umgebungsvariable AWS_REGION.",
    ),
    "cli.common.no_profile": (
        "There is no AWS profile named {profile!r} (see `aws configure list-profiles`)",
        "Es gibt kein AWS-Profil «{profile}» (siehe `aws configure list-profiles`)",
    ),
    "cli.common.unreachable": (
        "Cannot reach AWS ({error}); check the network or --endpoint-url.",
        "AWS ist nicht erreichbar ({error}); prüfen Sie das Netzwerk oder --endpoint-url.",
    ),
    "cli.common.credentials_rejected": (
        "The AWS credentials do not work ({code}): log in again, then run backupctl again.",
        "Die AWS-Zugangsdaten funktionieren nicht ({code}): Melden Sie sich neu an und starten Sie "
        "backupctl dann erneut.",
    ),
    "cli.common.aws_refused": (
        "AWS refused {operation}: {reason}",
        "AWS hat {operation} abgelehnt: {reason}",
    ),
    "cli.common.aws_failed": (
        "AWS call failed: {error}",
        "Der Aufruf an AWS ist fehlgeschlagen: {error}",
    ),
    # --- ages in tables (output.py) ----------------------------------------------------------------
    "cli.common.age_days": ("{days} days", "{days} Tage"),
    # --- backupctl run (run_job.py) ----------------------------------------------------------------
    "cli.common.run_unknown_job": (
        "There is no job {job!r}; the jobs are: {jobs}.",
        "Es gibt keinen Job «{job}»; die Jobs heissen: {jobs}.",
    ),
    "cli.common.run_running": (
        "Running {name} (it may take a few minutes) ...",
        "{name} läuft (das kann einige Minuten dauern) ...",
    ),
    "cli.common.run_connection_broke": (
        "The connection to AWS broke while {name} ran ({error}); the job may still be running. Look at its "
        "log group /aws/lambda/{name} (or `backupctl status` in a few minutes) before running it again.",
        "Die Verbindung zu AWS ist abgebrochen, während {name} lief ({error}); der Job läuft vielleicht "
        "noch. Sehen Sie in seiner Protokollgruppe /aws/lambda/{name} nach (oder in ein paar Minuten mit "
        "`backupctl status`), bevor Sie ihn erneut starten.",
    ),
    "cli.common.run_no_document": (
        "No dump document {stack}-Dump-... in this account and region: is the stack deployed with the dump on?",
        "In diesem Konto und dieser Region gibt es kein Dump-Dokument {stack}-Dump-...: Ist der Stack mit "
        "eingeschaltetem Dump eingerichtet?",
    ),
    "cli.common.run_dump_off": (
        "The dump is switched off in the configuration (dump.enabled: false).",
        "Der Dump ist in der Konfiguration ausgeschaltet (dump.enabled: false).",
    ),
    "cli.common.run_sent": (
        "Sent {document} as command {command}; output in the log group {group}.",
        "{document} als Befehl {command} gesendet; die Ausgabe steht in der Protokollgruppe {group}.",
    ),
    "cli.common.run_still_running": (
        "The dump command {command} is still running after {minutes} minutes; follow it in {group}.",
        "Der Dump-Befehl {command} läuft nach {minutes} Minuten immer noch; verfolgen Sie ihn in {group}.",
    ),
    "cli.common.run_no_server": (
        "No server matched the dump's targets ({targets}): is the web server running and tagged {tag}, "
        "with the SSM agent online (Systems Manager, Fleet Manager)?",
        "Kein Server passt zu den Zielen des Dumps ({targets}): Läuft der Webserver, trägt er das Tag "
        "{tag} und ist sein SSM-Agent online (Systems Manager, Fleet Manager)?",
    ),
    "cli.common.run_done": ("{job}: done", "{job}: erledigt"),
    "cli.common.run_failed": (
        "{job}: FAILED (see above and its log)",
        "{job}: FEHLGESCHLAGEN (siehe oben und in seinem Protokoll)",
    ),
    # --- backupctl prune --dry-run (prune.py) ------------------------------------------------------
    "cli.common.prune_dry_run_only": (
        "backupctl only shows the plan (prune --dry-run); the prune job deletes "
        "(it runs daily, or now with `backupctl run prune`).",
        "backupctl zeigt nur den Plan (prune --dry-run); gelöscht wird vom Job prune "
        "(er läuft täglich, oder sofort mit `backupctl run prune`).",
    ),
    "cli.common.prune_title": (
        "Retention plan ({daily} daily, {weekly} weekly, {monthly} monthly, max {max_age} days, "
        "at least {min_keep} usable kept)",
        "Aufbewahrungsplan ({daily} tägliche, {weekly} wöchentliche, {monthly} monatliche, höchstens "
        "{max_age} Tage alt, immer mindestens {min_keep} verwendbare)",
    ),
    # with offsite copies: the plan in the offsite region (its own policy)
    "cli.common.prune_offsite_title": (
        "Retention plan of the offsite copies in {region} ({daily} daily, {weekly} weekly, {monthly} "
        "monthly, max {max_age} days, at least {min_keep} usable kept)",
        "Aufbewahrungsplan der Kopien ausser Haus in {region} ({daily} tägliche, {weekly} wöchentliche, "
        "{monthly} monatliche, höchstens {max_age} Tage alt, immer mindestens {min_keep} verwendbare)",
    ),
    # column headers, separated by |
    "cli.common.prune_columns": (
        "source|kind|backup|made ({zone})|state|action|why",
        "Quelle|Art|Sicherung|erstellt ({zone})|Zustand|Aktion|Grund",
    ),
    "cli.common.prune_delete": ("DELETE", "LÖSCHEN"),
    "cli.common.prune_keep": ("keep", "behalten"),
    "cli.common.prune_summary": (
        "{delete} to delete, {keep} to keep. Nothing was deleted.",
        "{delete} zu löschen, {keep} zu behalten. Es wurde nichts gelöscht.",
    ),
    "cli.offsite.role_denied": (
        "The offsite copies in account {account} ({region}) cannot be read: AWS did not let {caller} "
        "assume the role {role} ({reason}). The offsite stack {stack} must be deployed in account "
        "{account} (it creates that role and lets account {home} assume it), and {caller} needs "
        "sts:AssumeRole on {role} (an IAM policy in account {caller_account}).",
        "Die Kopien ausser Haus im Konto {account} ({region}) können nicht gelesen werden: AWS hat {caller} "
        "nicht erlaubt, die Rolle {role} zu übernehmen ({reason}). Der Stack {stack} für die Kopien ausser "
        "Haus muss im Konto {account} eingerichtet sein (er erstellt diese Rolle und erlaubt dem Konto "
        "{home}, sie zu übernehmen), und {caller} braucht sts:AssumeRole auf {role} (eine IAM-Richtlinie "
        "im Konto {caller_account}).",
    ),
    "cli.offsite.unreadable": ("could not be read", "nicht lesbar"),
    "cli.offsite.column_account": ("{region}, account {account}", "{region}, Konto {account}"),
    "cli.offsite.restore_other_account": (
        "--from-region {region}: the offsite copies are in account {target} (offsite.account in cdk.json) "
        "and what is restored is created there, but these credentials are of account {account}. Run "
        "backupctl with credentials of account {target}: AWS_PROFILE=<a profile of account {target}> "
        "backupctl ... (or --profile), after `aws sso login` for that profile if you use SSO.",
        "--from-region {region}: Die Kopien ausser Haus liegen im Konto {target} (offsite.account in "
        "cdk.json), und was wiederhergestellt wird, entsteht dort; diese Zugangsdaten gehören aber zum "
        "Konto {account}. Starten Sie backupctl mit Zugangsdaten des Kontos {target}: "
        "AWS_PROFILE=<ein Profil des Kontos {target}> backupctl ... (oder --profile), bei SSO vorher "
        "`aws sso login` für dieses Profil.",
    ),
}

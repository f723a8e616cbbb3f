"""The catalogue's entries for backupctl restore db|server|dump (restore_common, restore_db, restore_server, dumpwriter, later)."""

from __future__ import annotations

from typing import Final

# {what} is a kind of backup in the nominative ("DB-Snapshot", "Server-Abbild (AMI)": both take "kein"),
# {whats} its plural, {this} it with its article at the start of a sentence ("Der Snapshot", "Das ...").
# Commands to be typed ({command}, {rename}) are built in the code: they are the same in both languages.
ENTRIES: Final[dict[str, tuple[str, str]]] = {
    # --- the kinds of backup a restore starts from ------------------------------------------------
    "cli.restore.kind.db": ("DB snapshot", "DB-Snapshot"),
    "cli.restore.kind.ami": ("AMI", "Server-Abbild (AMI)"),
    "cli.restore.kinds.db": ("DB snapshots", "DB-Snapshots"),
    "cli.restore.kinds.ami": ("AMIs", "Server-Abbilder (AMIs)"),
    "cli.restore.this.db": ("Snapshot", "Der Snapshot"),
    "cli.restore.this.ami": ("AMI", "Das Server-Abbild (AMI)"),
    # --- which backup (restore_common) ------------------------------------------------------------
    "cli.restore.unknown_time": ("unknown time", "Zeitpunkt unbekannt"),
    "cli.restore.no_usable": ("there is no usable one", "Es ist keine verwendbare Sicherung vorhanden"),
    "cli.restore.no_usable_of": (
        "there is no usable one of {source}",
        "Von {source} ist keine verwendbare Sicherung vorhanden",
    ),
    "cli.restore.newest_usable_one": (
        "the newest usable is {shown}",
        "Die neueste verwendbare Sicherung ist {shown}",
    ),
    "cli.restore.newest_usable_many": (
        "the newest usable are {shown}",
        "Die neuesten verwendbaren Sicherungen sind {shown}",
    ),
    "cli.restore.others": (
        " (schoolbackup has {whats} of {names})",
        " (schoolbackup hat {whats} von {names})",
    ),
    "cli.restore.no_backup_of": (
        "There is no schoolbackup {what} of {source}{others}.",
        "Für {source} ist kein {what} von schoolbackup vorhanden{others}.",
    ),
    "cli.restore.source_missing": (
        "{source} does not exist and has no schoolbackup {what}{others}.",
        "{source} existiert nicht, und dafür ist auch kein {what} von schoolbackup vorhanden{others}.",
    ),
    "cli.restore.none_here": (
        "There is no schoolbackup {what} in this region: nothing to restore.",
        "In dieser Region ist kein {what} von schoolbackup vorhanden: Es gibt nichts wiederherzustellen.",
    ),
    "cli.restore.several_sources": (
        "schoolbackup has {whats} of several sources ({names}): choose one with --source.",
        "schoolbackup hat {whats} von mehreren Quellen ({names}): Wählen Sie mit --source eine davon aus.",
    ),
    "cli.restore.none_usable": (
        "No {what} of {source} is usable: the newest, {id}, {why}; wait for it to finish or pass an older "
        "one explicitly.",
        "Von {source} ist kein {what} verwendbar: Die neueste Sicherung, {id}, {why}; warten Sie, bis sie "
        "fertig ist, oder geben Sie ausdrücklich eine ältere an.",
    ),
    "cli.restore.other_source": (
        "{this} {id} is a backup of {source}, not of {wanted}.",
        "{this} {id} ist eine Sicherung von {source}, nicht von {wanted}.",
    ),
    "cli.restore.not_usable": (
        "{this} {id} {why}, so it cannot be restored.",
        "Wiederherstellung nicht möglich: {this} {id} {why}.",
    ),
    "cli.restore.not_ours": (
        "{this} {id} does not carry {tag}: backupctl restores only what schoolbackup made.",
        "{this} {id} trägt das Tag {tag} nicht: backupctl stellt nur wieder her, was schoolbackup erstellt "
        "hat.",
    ),
    "cli.restore.both": ("{first} and {second}", "{first} und {second}"),
    "cli.restore.then": ("{first}, then {second}", "{first}, danach {second}"),
    # --- waiting for AWS --------------------------------------------------------------------------
    "cli.restore.waiting": (
        "Waiting for {what} to become {done} ...",
        "Warten, bis {what} den Zustand «{done}» erreicht ...",
    ),
    "cli.restore.waiting_so_far": (
        "Waiting for {what} to become {done}: {state}, {elapsed} so far ...",
        "Warten, bis {what} den Zustand «{done}» erreicht: jetzt «{state}», bisher {elapsed} ...",
    ),
    "cli.restore.failed_state": (
        "{what} is {state} instead of {done}{why}: {hint}",
        "{what} ist im Zustand «{state}» statt «{done}»{why}: {hint}",
    ),
    "cli.restore.timed_out": (
        "{what} is still {state} after {minutes} minutes; it keeps going on its own: {hint}",
        "{what} ist nach {minutes} Minuten immer noch im Zustand «{state}»; der Vorgang läuft von selbst "
        "weiter: {hint}",
    ),
    "cli.restore.see": ("see {command}", "siehe {command}"),
    # --- the plan and the next steps --------------------------------------------------------------
    "cli.restore.yes": ("yes", "ja"),
    "cli.restore.no": ("no", "nein"),
    "cli.restore.next_steps": ("Next steps:", "Nächste Schritte:"),
    "cli.restore.setting.engine": ("engine", "Engine"),
    "cli.restore.setting.instance_class": ("instance class", "Instanzklasse"),
    "cli.restore.setting.db_subnet_group": ("db subnet group", "DB-Subnetzgruppe"),
    "cli.restore.setting.vpc_security_groups": ("vpc security groups", "VPC-Sicherheitsgruppen"),
    "cli.restore.setting.db_parameter_group": ("db parameter group", "DB-Parametergruppe"),
    "cli.restore.setting.option_group": ("option group", "Optionsgruppe"),
    "cli.restore.setting.port": ("port", "Port"),
    "cli.restore.setting.multi_az": ("multi az", "Multi-AZ"),
    "cli.restore.setting.publicly_accessible": ("publicly accessible", "öffentlich erreichbar"),
    "cli.restore.setting.deletion_protection": ("deletion protection", "Löschschutz"),
    "cli.restore.setting.copy_tags_to_snapshot": ("copy tags to snapshot", "Tags in Snapshots kopieren"),
    "cli.restore.setting.instance_type": ("instance type", "Instanztyp"),
    "cli.restore.setting.subnet_id": ("subnet id", "Subnetz-ID"),
    "cli.restore.setting.vpc_id": ("vpc id", "VPC-ID"),
    "cli.restore.setting.security_groups": ("security groups", "Sicherheitsgruppen"),
    "cli.restore.setting.instance_profile_arn": ("instance profile arn", "Instanzprofil (ARN)"),
    "cli.restore.setting.key_name": ("key name", "Schlüsselpaar"),
    "cli.restore.setting.isolated": ("isolated", "isoliert"),
    "cli.restore.setting.metadata": ("metadata", "Metadaten"),
    "cli.restore.imdsv2_only": ("IMDSv2 only (HttpTokens=required)", "nur IMDSv2 (HttpTokens=required)"),
    # --- security groups and subnets --------------------------------------------------------------
    "cli.restore.groups_missing": (
        "Not every security group of {ids} exists in this region (AWS: {error}).",
        "Nicht alle der Sicherheitsgruppen {ids} existieren in dieser Region (AWS: {error}).",
    ),
    "cli.restore.groups_outside": (
        "Security group(s) {ids} are not in {vpc}, the VPC of {where}.",
        "Die Sicherheitsgruppe(n) {ids} liegen nicht in {vpc}, der VPC, in der {where} liegt.",
    ),
    "cli.restore.where_db_subnet_group": ("DB subnet group {name}", "die DB-Subnetzgruppe {name}"),
    "cli.restore.where_subnet": ("subnet {name}", "das Subnetz {name}"),
    # --- restore db -------------------------------------------------------------------------------
    "cli.restore.id_length": ("it must have 1 to {max} characters", "Er muss 1 bis {max} Zeichen lang sein"),
    "cli.restore.id_characters": (
        "it may contain only letters, digits and hyphens",
        "Er darf nur Buchstaben, Ziffern und Bindestriche enthalten",
    ),
    "cli.restore.id_start": ("it must start with a letter", "Er muss mit einem Buchstaben beginnen"),
    "cli.restore.id_double_hyphen": (
        "it must not contain two hyphens in a row",
        "Er darf keine zwei Bindestriche hintereinander enthalten",
    ),
    "cli.restore.id_end": ("it must not end with a hyphen", "Er darf nicht mit einem Bindestrich enden"),
    "cli.restore.bad_new_id": (
        "--as {name!r} is not a valid RDS identifier: {problem}.",
        "--as «{name}» ist kein gültiger RDS-Name: {problem}.",
    ),
    "cli.restore.bad_db_source": (
        "--source {name!r} is not an RDS identifier like school-db.",
        "--source «{name}» ist kein RDS-Name wie school-db.",
    ),
    "cli.restore.db_exists": (
        "A DB instance named {name} exists already: choose another name with --as (a restore never "
        "replaces an instance).",
        "Eine DB-Instanz namens {name} gibt es bereits: Wählen Sie mit --as einen anderen Namen (eine "
        "Wiederherstellung ersetzt nie eine bestehende Instanz).",
    ),
    "cli.restore.no_db_snapshot": (
        "There is no DB snapshot {id}: {newest}.",
        "Es gibt keinen DB-Snapshot {id}: {newest}.",
    ),
    "cli.restore.no_subnet_group": (
        "There is no DB subnet group named {name} in this region.",
        "In dieser Region gibt es keine DB-Subnetzgruppe namens {name}.",
    ),
    "cli.restore.engine_changed": (
        "The snapshot is {engine} {version}, the source is now {now}: the new instance gets the engine's "
        "default parameter and option groups (pass --parameter-group for another one).",
        "Der Snapshot ist {engine} {version}, die Quelle inzwischen {now}: Die neue Instanz erhält die "
        "Standard-Parameter- und -Optionsgruppen der Engine (eine andere Parametergruppe wählen Sie mit "
        "--parameter-group).",
    ),
    "cli.restore.db_gone_needs": (
        "The source database {source} no longer exists, so its network settings cannot be copied: pass "
        "{flags}{where}.",
        "Die Quelldatenbank {source} existiert nicht mehr, ihre Netzwerkeinstellungen lassen sich deshalb "
        "nicht übernehmen: Geben Sie {flags} an{where}.",
    ),
    "cli.restore.snapshot_vpc": (
        " (the snapshot was taken in {vpc})",
        " (der Snapshot wurde in {vpc} erstellt)",
    ),
    "cli.restore.db_gone_note": (
        "The source database {source} no longer exists: engine {engine} {version}, port {port} and storage "
        "come from the snapshot{extra}.",
        "Die Quelldatenbank {source} existiert nicht mehr: Engine {engine} {version}, Port {port} und "
        "Speicher stammen aus dem Snapshot{extra}.",
    ),
    "cli.restore.db_gone_default_params": (
        ", the parameter group is the engine's default (pass --parameter-group)",
        ", die Parametergruppe ist die Standardgruppe der Engine (eine andere mit --parameter-group)",
    ),
    "cli.restore.db_gone_snapshot_class": (
        ", the instance class is the one the snapshot was taken from",
        ", die Instanzklasse ist die der Datenbank, von welcher der Snapshot stammt",
    ),
    "cli.restore.other_vpc": (
        "The snapshot was taken in {vpc}; the new instance goes into {new_vpc}.",
        "Der Snapshot wurde in {vpc} erstellt; die neue Instanz kommt in {new_vpc}.",
    ),
    "cli.restore.db_endpoint_of": ("the endpoint of {new} ({command})", "den Endpunkt von {new} ({command})"),
    "cli.restore.db_step_point": (
        "Point the application's DB host at {where} (and the dump's db_host in cdk.json, then cdk deploy), "
        "or rename the instances so the old host name leads to the new one: {rename}. It has the users and "
        "passwords of the snapshot's time.",
        "Richten Sie den DB-Host der Anwendung auf {where} aus (ebenso db_host des Dumps in cdk.json, danach "
        "cdk deploy), oder benennen Sie die Instanzen um, damit der alte Hostname zur neuen führt: {rename}. "
        "Die neue Datenbank hat die Benutzer und Passwörter vom Zeitpunkt des Snapshots.",
    ),
    "cli.restore.db_step_tag": (
        "Once it is the real database, tag it so schoolbackup backs it up: {command}",
        "Sobald sie die richtige Datenbank ist, versehen Sie sie mit dem Tag, damit schoolbackup sie sichert: "
        "{command}",
    ),
    "cli.restore.db_step_delete_running": (
        "Delete the old database {old} only when you are sure the new one is right (it keeps running and "
        "being backed up meanwhile).",
        "Löschen Sie die alte Datenbank {old} erst, wenn Sie sicher sind, dass die neue stimmt (die alte läuft "
        "bis dahin weiter und wird weiter gesichert).",
    ),
    "cli.restore.db_step_delete": (
        "Delete the old database {old} only when you are sure the new one is right.",
        "Löschen Sie die alte Datenbank {old} erst, wenn Sie sicher sind, dass die neue stimmt.",
    ),
    "cli.restore.restoring_db": (
        "Restoring {id} ({source}, {when}) as {new}:",
        "{id} ({source}, {when}) wird als {new} wiederhergestellt:",
    ),
    "cli.restore.db_takes": (
        "RDS restores take 10-30 minutes for a small database.",
        "Die Wiederherstellung einer kleinen Datenbank dauert bei RDS 10 bis 30 Minuten.",
    ),
    "cli.restore.db_available": (
        "{new} is available at {endpoint}.",
        "{new} ist erreichbar unter {endpoint}.",
    ),
    "cli.restore.db_requested": (
        "Restore of {new} requested; follow it with: {command}",
        "Die Wiederherstellung von {new} ist beantragt; verfolgen Sie sie mit: {command}",
    ),
    "cli.restore.db_not_backed_up": (
        "{new} is NOT backed up until you tag it {tag} (it does not carry the tag of {source}).",
        "{new} wird NICHT gesichert, bis Sie die Instanz mit dem Tag {tag} versehen (sie hat das Tag von "
        "{source} nicht übernommen).",
    ),
    # --- restore server ---------------------------------------------------------------------------
    "cli.restore.bad_server_source": (
        "--source {name!r} is not an EC2 instance id like i-0123456789abcdef0.",
        "--source «{name}» ist keine EC2-Instanz-ID wie i-0123456789abcdef0.",
    ),
    "cli.restore.isolated_no_groups": (
        "--isolated uses only its own security group: leave out --security-group.",
        "--isolated verwendet nur eine eigene Sicherheitsgruppe: Lassen Sie --security-group weg.",
    ),
    "cli.restore.bad_ami": (
        "--ami {ami!r} is not an AMI id like ami-0abc1234def567890 (or 'latest').",
        "--ami «{ami}» ist keine AMI-ID wie ami-0abc1234def567890 (oder 'latest').",
    ),
    "cli.restore.no_ami": (
        "There is no AMI {ami} in this region: {newest}.",
        "In dieser Region gibt es kein Server-Abbild (AMI) {ami}: {newest}.",
    ),
    "cli.restore.no_subnet": (
        "There is no subnet {id} in this region.",
        "In dieser Region gibt es kein Subnetz {id}.",
    ),
    "cli.restore.server_terminated": ("is terminated", "ist beendet (terminated)"),
    "cli.restore.server_gone": ("no longer exists", "existiert nicht mehr"),
    "cli.restore.server_gone_needs": (
        "The source server {source} {how}, so its settings cannot be copied: pass {flags}{groups}.",
        "Der Quellserver {source} {how}, seine Einstellungen lassen sich deshalb nicht übernehmen: Geben Sie "
        "{flags} an{groups}.",
    ),
    "cli.restore.server_gone_groups": (
        " (and --security-group sg-..., else the VPC's default group)",
        " (dazu --security-group sg-..., sonst gilt die Standardgruppe der VPC)",
    ),
    "cli.restore.no_subnet_to_copy": (
        "The source server {source} has no subnet to copy: pass --subnet-id subnet-....",
        "Der Quellserver {source} hat kein Subnetz, das sich übernehmen liesse: Geben Sie --subnet-id "
        "subnet-... an.",
    ),
    "cli.restore.server_gone_note": (
        "The source server {source} {how}: no instance profile and no key pair are attached (attach a "
        "profile later with aws ec2 associate-iam-instance-profile).",
        "Der Quellserver {source} {how}: Es werden weder ein Instanzprofil noch ein Schlüsselpaar zugewiesen "
        "(ein Profil können Sie später mit aws ec2 associate-iam-instance-profile zuweisen).",
    ),
    "cli.restore.group_not_ours": (
        "Security group {name} ({id}) exists in {vpc} but does not carry {tag}: backupctl does not touch "
        "it; rename or delete it, then run again.",
        "Die Sicherheitsgruppe {name} ({id}) gibt es in {vpc} bereits, sie trägt aber das Tag {tag} nicht: "
        "backupctl verändert sie nicht. Benennen Sie sie um oder löschen Sie sie und starten Sie dann "
        "erneut.",
    ),
    "cli.restore.group_has_rules": (
        "Security group {name} ({id}) still has rules after revoking them: not launching.",
        "Die Sicherheitsgruppe {name} ({id}) hat nach dem Entfernen ihrer Regeln immer noch Regeln: Es wird "
        "kein Server gestartet.",
    ),
    "cli.restore.step_isolated": (
        "It is isolated as far as security groups go: {group} has no rule and it has no instance profile. "
        "Security groups do not stop the VPC's own DNS resolver, time service or instance metadata: for a "
        "server you suspect, also block DNS (Route 53 Resolver DNS Firewall) or use a quarantine subnet. "
        "Look at it through the EC2 serial console, or stop it and attach its volume to a clean instance.",
        "Was die Sicherheitsgruppen betrifft, ist der Server isoliert: {group} hat keine Regel, und er hat "
        "kein Instanzprofil. Sicherheitsgruppen sperren aber weder den DNS-Resolver der VPC noch deren "
        "Zeitdienst oder die Instanz-Metadaten: Sperren Sie bei einem verdächtigen Server zusätzlich DNS "
        "(Route 53 Resolver DNS Firewall) oder verwenden Sie ein Quarantäne-Subnetz. Untersuchen Sie ihn über "
        "die serielle EC2-Konsole, oder stoppen Sie ihn und hängen Sie sein Volume an eine saubere Instanz.",
    ),
    "cli.restore.your_groups": ("sg-<your server's groups>", "sg-<Gruppen Ihres Servers>"),
    "cli.restore.give_role_back": (
        "{command}, then give it its role back: {profile_command}",
        "{command}, danach geben Sie ihm seine Rolle zurück: {profile_command}",
    ),
    "cli.restore.step_leave_isolation": (
        "To leave isolation once you trust it, swap the security groups: {command}",
        "Um die Isolation aufzuheben, sobald Sie dem Server vertrauen, tauschen Sie die Sicherheitsgruppen "
        "aus: {command}",
    ),
    "cli.restore.step_move_eip": (
        "Move the Elastic IP {ip} from {old} to the new server: {command}",
        "Verschieben Sie die Elastic IP {ip} von {old} auf den neuen Server: {command}",
    ),
    "cli.restore.step_no_eip": (
        "No Elastic IP is associated with {old}: clients find the server through DNS or its address.",
        "Mit {old} ist keine Elastic IP verknüpft: Die Clients finden den Server über DNS oder seine Adresse.",
    ),
    "cli.restore.step_dns": (
        "Change DNS records that point at the old server{old_ips} to the new one ({new_ip}), unless they "
        "point at the Elastic IP you moved.",
        "Ändern Sie DNS-Einträge, die auf den alten Server{old_ips} zeigen, auf den neuen ({new_ip}), ausser "
        "sie zeigen auf die Elastic IP, die Sie verschoben haben.",
    ),
    "cli.restore.its_address": ("its address", "seine Adresse"),
    "cli.restore.step_move_tag": (
        "Once it is the real server, move the {tag} tag so schoolbackup backs it up: {command}",
        "Sobald er der richtige Server ist, verschieben Sie das Tag {tag}, damit schoolbackup ihn sichert: "
        "{command}",
    ),
    "cli.restore.step_terminate_old": (
        "Terminate the old server {old} only when you are sure the new one is right.",
        "Beenden Sie den alten Server {old} erst, wenn Sie sicher sind, dass der neue stimmt.",
    ),
    "cli.restore.step_check_app": (
        "Check the application on the new server before you tell anyone it is back.",
        "Prüfen Sie die Anwendung auf dem neuen Server, bevor Sie jemandem sagen, dass sie wieder läuft.",
    ),
    "cli.restore.launching": (
        "Launching a new server from {id} ({name}, {source}, {when}):",
        "Ein neuer Server wird aus {id} ({name}, {source}, {when}) gestartet:",
    ),
    "cli.restore.launched": ("Launched {id}.", "{id} wurde gestartet."),
    "cli.restore.launched_isolated": (
        "Launched {id} in {groups}, which lets no traffic in or out.",
        "{id} wurde in {groups} gestartet; diese Gruppe lässt keinen Netzwerkverkehr hinein oder hinaus.",
    ),
    "cli.restore.server_running": (
        "{id} is running, private IP {ip}.",
        "{id} läuft, private IP-Adresse {ip}.",
    ),
    "cli.restore.server_starting": (
        "{id} is starting; follow it with: {command}",
        "{id} startet; verfolgen Sie den Start mit: {command}",
    ),
    "cli.restore.same_software": (
        "The new server runs the same software as {source}: its cron jobs, mail and application run too and "
        "reach the same database.",
        "Auf dem neuen Server läuft dieselbe Software wie auf {source}: Seine Cron-Jobs, sein Mailversand und "
        "seine Anwendung laufen ebenfalls und greifen auf dieselbe Datenbank zu.",
    ),
    "cli.restore.server_not_backed_up": (
        "{id} is NOT backed up until it carries the tag {tag}.",
        "{id} wird NICHT gesichert, solange der Server das Tag {tag} nicht trägt.",
    ),
}

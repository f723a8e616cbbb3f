"""``backupctl restore db``, ``restore server`` with ``language: de``: every
sentence in German, the commands to type as they are."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli.backupctl import restore_common
from cli.backupctl.context import Aws
from lambdas.common.contracts import backup_name
from tests.cli.conftest import DB, NIGHT, REGION, Result, School
from tests.cli.test_restore_aws import db_ids, instances, make_ami, make_db_snapshot, restored_instance
from tests.unit.test_messages import english_words

Cli = Callable[..., Result]
OnCall = Callable[[str, str, Callable[..., None]], None]

NEW = "school-db-restored"
WHEN = "26.11.2026 00:30 UTC"  # NIGHT as the German plan says it
# A command to type (aws <service> <operation> --flag value ...): the same in both languages.
COMMAND = re.compile(r"aws [a-z0-9]+ [a-z-]+(?: --[a-z-]+(?: [^\s,)]+)?)*")
# AWS ids are random hex: "sg-37fb1bcdde7daa5be" would read as the English "be".
AWS_ID = re.compile(r"\b(?:sg|subnet|vpc|ami|eipalloc|snap|vol)-[0-9a-f]+\b")


@pytest.fixture
def rds(aws: None) -> Any:
    return boto3.client("rds")


@pytest.fixture
def ec2(aws: None) -> Any:
    return boto3.client("ec2")


@pytest.fixture
def on_call(monkeypatch: pytest.MonkeyPatch) -> OnCall:
    """A botocore event handler on every client backupctl makes (as in test_restore_aws)."""
    handlers: list[tuple[str, str, Callable[..., None]]] = []
    original = Aws.client

    def client(self: Aws, service: str, *args: Any) -> Any:
        made = original(self, service, *args)
        for svc, event, handler in handlers:
            if svc == service:
                made.meta.events.register(event, handler)
        return made

    monkeypatch.setattr(Aws, "client", client)
    return lambda service, event, handler: handlers.append((service, event, handler))


@pytest.fixture
def de(cli: Cli, german_config: Path) -> Cli:
    """``backupctl --config <the German cdk.json> <args>``."""
    return lambda *args: cli("--config", str(german_config), *args)


def no_english(text: str) -> None:
    """Not one English word in what was printed, the commands to type left out."""
    for line in text.splitlines():
        assert english_words(AWS_ID.sub(" ", COMMAND.sub(" ", line))) == [], line


def error(result: Result) -> str:
    """The one sentence of a refusal (``backupctl: ...``)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    no_english(lines[0])
    return lines[0].removeprefix("backupctl: ")


# --- restore db -------------------------------------------------------------------------------------


def test_restore_db_speaks_german(school: School, de: Cli, rds: Any) -> None:
    snap = make_db_snapshot(rds, DB, NIGHT)

    result = de("restore", "db", "--as", NEW)

    assert result.exit_code == 0, result.stderr
    new = rds.describe_db_instances(DBInstanceIdentifier=NEW)["DBInstances"][0]
    endpoint = f"{new['Endpoint']['Address']}:{new['Endpoint']['Port']}"
    lines = result.stdout.splitlines()
    assert lines[0] == f"{snap} ({DB}, {WHEN}) wird als {NEW} wiederhergestellt:"
    assert "  Instanzklasse               db.t4g.micro" in lines
    assert "  öffentlich erreichbar       nein" in lines
    assert "  Tags in Snapshots kopieren  ja" in lines
    assert "Die Wiederherstellung einer kleinen Datenbank dauert bei RDS 10 bis 30 Minuten." in lines
    assert f"{NEW} ist erreichbar unter {endpoint}." in lines
    assert (
        f"{NEW} wird NICHT gesichert, bis Sie die Instanz mit dem Tag Backup=true versehen "
        f"(sie hat das Tag von {DB} nicht übernommen)."
    ) in lines
    assert "Nächste Schritte:" in lines
    assert (
        f"  1. Richten Sie den DB-Host der Anwendung auf {endpoint} aus (ebenso db_host des Dumps in "
        "cdk.json, danach cdk deploy), oder benennen Sie die Instanzen um, damit der alte Hostname zur "
        f"neuen führt: aws rds modify-db-instance --region {REGION} --db-instance-identifier {DB} "
        f"--new-db-instance-identifier {DB}-old --apply-immediately, danach aws rds modify-db-instance "
        f"--region {REGION} --db-instance-identifier {NEW} --new-db-instance-identifier {DB} "
        "--apply-immediately. Die neue Datenbank hat die Benutzer und Passwörter vom Zeitpunkt des Snapshots."
    ) in lines
    assert (
        f"  3. Löschen Sie die alte Datenbank {DB} erst, wenn Sie sicher sind, dass die neue stimmt "
        "(die alte läuft bis dahin weiter und wird weiter gesichert)."
    ) in lines
    no_english(result.stdout)


def test_restore_db_no_wait_and_json_speak_german(school: School, de: Cli, rds: Any) -> None:
    make_db_snapshot(rds, DB, NIGHT)

    result = de("restore", "db", "--as", NEW, "--no-wait", "--json")

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["status"] == "creating" and doc["kind"] == "rds"  # machine values stay as they are
    assert (
        f"Die Wiederherstellung von {NEW} ist beantragt; verfolgen Sie sie mit: aws rds wait "
        f"db-instance-available --region {REGION} --db-instance-identifier {NEW}"
    ) in result.stderr.splitlines()
    assert doc["next_steps"][0].startswith(
        f"Richten Sie den DB-Host der Anwendung auf den Endpunkt von {NEW} (aws rds describe-db-instances "
        f"--region {REGION} --db-instance-identifier {NEW}) aus"
    )
    no_english(result.stderr)
    for step in doc["next_steps"]:
        no_english(step)


def test_restore_db_refusals_speak_german(school: School, de: Cli, rds: Any, on_call: OnCall) -> None:
    good = make_db_snapshot(rds, DB, NIGHT - timedelta(days=1))
    creating = make_db_snapshot(rds, DB, NIGHT)
    foreign = make_db_snapshot(rds, DB, NIGHT + timedelta(hours=1), managed=False)

    def still_creating(parsed: dict[str, Any], **_: Any) -> None:
        for snap in parsed.get("DBSnapshots", []):
            if snap["DBSnapshotIdentifier"] == creating:
                snap["Status"] = "creating"

    on_call("rds", "after-call.rds.DescribeDBSnapshots", still_creating)
    expected = {
        ("--as", "1school"): (
            2,
            "--as «1school» ist kein gültiger RDS-Name: Er muss mit einem Buchstaben beginnen.",
        ),
        ("--as", "school--db"): (
            2,
            "--as «school--db» ist kein gültiger RDS-Name: Er darf keine zwei Bindestriche hintereinander "
            "enthalten.",
        ),
        ("--as", DB): (
            2,
            f"Eine DB-Instanz namens {DB} gibt es bereits: Wählen Sie mit --as einen anderen Namen (eine "
            "Wiederherstellung ersetzt nie eine bestehende Instanz).",
        ),
        ("--as", NEW, "--snapshot", creating): (
            1,
            f"Wiederherstellung nicht möglich: Der Snapshot {creating} ist noch im Zustand «creating».",
        ),
        ("--as", NEW, "--snapshot", foreign): (
            1,
            f"Der Snapshot {foreign} trägt das Tag ManagedBy=schoolbackup nicht: backupctl stellt nur wieder "
            "her, was schoolbackup erstellt hat.",
        ),
        ("--as", NEW, "--snapshot", "sb-school-db-20990101-0000"): (
            1,
            "Es gibt keinen DB-Snapshot sb-school-db-20990101-0000: Die neueste verwendbare Sicherung ist "
            f"{good} ({DB}, 25.11.2026 00:30 UTC).",
        ),
        ("--as", NEW, "--source", "library-db"): (
            2,
            f"library-db existiert nicht, und dafür ist auch kein DB-Snapshot von schoolbackup vorhanden "
            f"(schoolbackup hat DB-Snapshots von {DB}).",
        ),
    }
    for args, (code, sentence) in expected.items():
        result = de("restore", "db", *args)

        assert result.exit_code == code, args
        assert error(result) == sentence
    assert db_ids(rds) == {DB}


def test_restore_db_several_sources_and_a_gone_source_speak_german(school: School, de: Cli, rds: Any) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier="library-db",
        DBInstanceClass="db.t4g.micro",
        Engine="mysql",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-2",
    )
    make_db_snapshot(rds, DB, NIGHT)
    make_db_snapshot(rds, "library-db", NIGHT)

    several = de("restore", "db", "--as", NEW)

    assert several.exit_code == 2
    assert error(several) == (
        "schoolbackup hat DB-Snapshots von mehreren Quellen (library-db, school-db): Wählen Sie mit "
        "--source eine davon aus."
    )

    mixed = de("restore", "db", "--snapshot", backup_name(DB, NIGHT), "--source", "library-db", "--as", "x")
    assert mixed.exit_code == 2
    assert (
        error(mixed)
        == f"Der Snapshot {backup_name(DB, NIGHT)} ist eine Sicherung von {DB}, nicht von library-db."
    )

    rds.delete_db_instance(DBInstanceIdentifier=DB, SkipFinalSnapshot=True)
    gone = de("restore", "db", "--as", NEW, "--source", DB)

    assert gone.exit_code == 2
    assert error(gone).startswith(
        f"Die Quelldatenbank {DB} existiert nicht mehr, ihre Netzwerkeinstellungen lassen sich deshalb nicht "
        "übernehmen: Geben Sie --subnet-group <name> und --security-group sg-... an"
    )

    result = de(
        "restore", "db", "--as", NEW, "--source", DB, "--subnet-group", school.db_subnet_group,
        "--security-group", school.db_security_group,
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert (
        f"Die Quelldatenbank {DB} existiert nicht mehr: Engine mysql " in result.stdout
        and "Port 3306 und Speicher stammen aus dem Snapshot, die Parametergruppe ist die Standardgruppe der "
        "Engine (eine andere mit --parameter-group), die Instanzklasse ist die der Datenbank, von welcher der "
        "Snapshot stammt."
        in result.stdout
    )
    assert (
        f"  3. Löschen Sie die alte Datenbank {DB} erst, wenn Sie sicher sind, dass die neue stimmt."
        in result.stdout.splitlines()
    )
    no_english(result.stdout)


def test_a_db_restore_that_takes_too_long_says_so_in_german(
    school: School, de: Cli, rds: Any, on_call: OnCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_db_snapshot(rds, DB, NIGHT)
    clock = [0.0]
    monkeypatch.setattr(restore_common, "_now", lambda: clock[0])
    monkeypatch.setattr(restore_common, "_sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))

    def creating(parsed: dict[str, Any], **_: Any) -> None:
        for db in parsed.get("DBInstances", []):
            if db["DBInstanceIdentifier"] == NEW:
                db["DBInstanceStatus"] = "creating"

    on_call("rds", "after-call.rds.DescribeDBInstances", creating)

    result = de("restore", "db", "--as", NEW, "--timeout-minutes", "2")

    assert result.exit_code == 1
    assert error(result) == (
        f"{NEW} ist nach 2 Minuten immer noch im Zustand «creating»; der Vorgang läuft von selbst weiter: "
        f"siehe aws rds describe-db-instances --region {REGION} --db-instance-identifier {NEW}"
    )


# --- restore server ---------------------------------------------------------------------------------


def test_restore_server_speaks_german(school: School, de: Cli, ec2: Any) -> None:
    ami = make_ami(ec2, school.server, NIGHT)

    result = de("restore", "server")

    assert result.exit_code == 0, result.stderr
    new = restored_instance(ec2, ami)
    new_id, ip = new["InstanceId"], new["PrivateIpAddress"]
    lines = result.stdout.splitlines()
    assert lines[0] == f"Ein neuer Server wird aus {ami} (web, {school.server}, {WHEN}) gestartet:"
    assert "  Instanztyp             t4g.small" in lines
    assert "  isoliert               nein" in lines
    assert "  Metadaten              nur IMDSv2 (HttpTokens=required)" in lines
    assert f"{new_id} wurde gestartet." in lines
    assert f"{new_id} läuft, private IP-Adresse {ip}." in lines
    assert (
        f"Auf dem neuen Server läuft dieselbe Software wie auf {school.server}: Seine Cron-Jobs, sein "
        "Mailversand und seine Anwendung laufen ebenfalls und greifen auf dieselbe Datenbank zu."
    ) in lines
    assert f"{new_id} wird NICHT gesichert, solange der Server das Tag Backup=true nicht trägt." in lines
    assert (
        f"  1. Mit {school.server} ist keine Elastic IP verknüpft: Die Clients finden den Server über DNS oder "
        "seine Adresse."
    ) in lines
    assert (
        "  3. Sobald er der richtige Server ist, verschieben Sie das Tag Backup=true, damit schoolbackup ihn "
        f"sichert: aws ec2 create-tags --region {REGION} --resources {new_id} --tags Key=Backup,Value=true und "
        f"aws ec2 delete-tags --region {REGION} --resources {school.server} --tags Key=Backup"
    ) in lines
    assert (
        f"  4. Beenden Sie den alten Server {school.server} erst, wenn Sie sicher sind, dass der neue stimmt."
    ) in lines
    no_english(result.stdout)


def test_an_isolated_server_speaks_german(school: School, de: Cli, ec2: Any) -> None:
    ami = make_ami(ec2, school.server, NIGHT)
    address = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=school.server)

    result = de("restore", "server", "--isolated", "--no-wait")

    assert result.exit_code == 0, result.stderr
    new_id = restored_instance(ec2, ami)["InstanceId"]
    group = f"schoolbackup-isolated-{school.server}"
    group_id = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [group]}])[
        "SecurityGroups"
    ][0]["GroupId"]
    lines = result.stdout.splitlines()
    assert (
        f"{new_id} wurde in {group_id} gestartet; diese Gruppe lässt keinen Netzwerkverkehr hinein oder hinaus."
    ) in lines
    assert (
        f"{new_id} startet; verfolgen Sie den Start mit: aws ec2 wait instance-running --region {REGION} "
        f"--instance-ids {new_id}"
    ) in lines
    assert lines.index("Nächste Schritte:") < lines.index(
        f"  1. Was die Sicherheitsgruppen betrifft, ist der Server isoliert: {group_id} hat keine Regel, und er "
        "hat kein Instanzprofil. Sicherheitsgruppen sperren aber weder den DNS-Resolver der VPC noch deren "
        "Zeitdienst oder die Instanz-Metadaten: Sperren Sie bei einem verdächtigen Server zusätzlich DNS "
        "(Route 53 Resolver DNS Firewall) oder verwenden Sie ein Quarantäne-Subnetz. Untersuchen Sie ihn über "
        "die serielle EC2-Konsole, oder stoppen Sie ihn und hängen Sie sein Volume an eine saubere Instanz."
    )
    assert any(
        line.startswith(
            "  2. Um die Isolation aufzuheben, sobald Sie dem Server vertrauen, tauschen Sie die "
        )
        and ", danach geben Sie ihm seine Rolle zurück: aws ec2 associate-iam-instance-profile" in line
        for line in lines
    )
    assert (
        f"  3. Verschieben Sie die Elastic IP {address['PublicIp']} von {school.server} auf den neuen Server: "
        f"aws ec2 associate-address --region {REGION} --allocation-id {address['AllocationId']} "
        f"--instance-id {new_id} --allow-reassociation"
    ) in lines
    no_english(result.stdout)


def test_restore_server_refusals_speak_german(school: School, de: Cli, ec2: Any) -> None:
    good = make_ami(ec2, school.server, NIGHT)
    foreign = make_ami(ec2, school.server, NIGHT + timedelta(days=1), managed=False)
    before = len(instances(ec2))
    expected = {
        ("--ami", "web-server"): (
            2,
            "--ami «web-server» ist keine AMI-ID wie ami-0abc1234def567890 (oder 'latest').",
        ),
        ("--ami", "ami-12345678"): (
            1,
            "In dieser Region gibt es kein Server-Abbild (AMI) ami-12345678: Die neueste verwendbare Sicherung "
            f"ist {good} ({school.server}, {WHEN}).",
        ),
        ("--ami", foreign): (
            1,
            f"Das Server-Abbild (AMI) {foreign} trägt das Tag ManagedBy=schoolbackup nicht: backupctl stellt "
            "nur wieder her, was schoolbackup erstellt hat.",
        ),
        ("--source", "web"): (
            2,
            "--source «web» ist keine EC2-Instanz-ID wie i-0123456789abcdef0.",
        ),
        ("--isolated", "--security-group", school.security_group): (
            2,
            "--isolated verwendet nur eine eigene Sicherheitsgruppe: Lassen Sie --security-group weg.",
        ),
    }
    for args, (code, sentence) in expected.items():
        result = de("restore", "server", *args)

        assert result.exit_code == code, args
        assert error(result) == sentence
    assert len(instances(ec2)) == before

    ec2.terminate_instances(InstanceIds=[school.server])
    gone = de("restore", "server")

    assert gone.exit_code == 2
    assert error(gone) == (
        f"Der Quellserver {school.server} ist beendet (terminated), seine Einstellungen lassen sich deshalb "
        "nicht übernehmen: Geben Sie --subnet-id subnet-... und --instance-type t4g.small an (dazu "
        "--security-group sg-..., sonst gilt die Standardgruppe der VPC)."
    )


def test_a_server_that_does_not_start_says_why_in_german(
    school: School, de: Cli, ec2: Any, on_call: OnCall
) -> None:
    ami = make_ami(ec2, school.server, NIGHT)

    def terminated(parsed: dict[str, Any], **_: Any) -> None:
        for reservation in parsed.get("Reservations", []):
            for instance in reservation["Instances"]:
                if instance["ImageId"] == ami:
                    instance["State"] = {"Code": 48, "Name": "terminated"}
                    instance["StateReason"] = {"Message": "Server.InsufficientInstanceCapacity"}

    on_call("ec2", "after-call.ec2.DescribeInstances", terminated)

    result = de("restore", "server")

    assert result.exit_code == 1
    new = restored_instance(ec2, ami)["InstanceId"]
    assert error(result) == (
        f"{new} ist im Zustand «terminated» statt «running» (Server.InsufficientInstanceCapacity): "
        f"siehe aws ec2 describe-instances --region {REGION} --instance-ids {new}"
    )

"""backupctl restore files / restore dump with ``language: de``: every sentence for the admin in German."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from tests.cli.conftest import BUCKET, MYSQL_DUMP, NIGHT, Result, replace_object, write_dump
from tests.cli.test_restore_files import DAY, SOURCE, _put_slot, _same_size_other_bytes, _tree
from tests.unit.test_messages import english_words

Cli = Callable[..., Result]
SLOT = "Dump vom 26.11.2026 01:30 (20261126T0030Z)"
HOST = "school-db.abcdefghijkl.eu-central-2.rds.amazonaws.com"


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _english(text: str) -> list[str]:
    """The English words left in what was printed (checksums, which may spell "be", left out)."""
    return english_words(re.sub(r"\b[0-9a-f]{64}\b", " ", text))


def _left(folder: Path) -> list[str]:
    """What is in ``folder`` besides the German cdk.json (german_config writes it there)."""
    return sorted(p.name for p in folder.iterdir() if p.name != "cdk.json")


def _error(result: Result) -> str:
    """The one error sentence on stderr, without the ``backupctl: `` prefix."""
    lines = _lines(result.stderr)
    assert len(lines) == 1, result.stderr
    return lines[0].removeprefix("backupctl: ")


# ---------------------------------------------------------------- restore files


def test_files_success_is_told_in_german(aws: None, cli: Cli, german_config: Path, tmp_path: Path) -> None:
    dump = write_dump(SOURCE, NIGHT)
    write_dump(SOURCE, NIGHT + timedelta(hours=2), manifest=False)  # a run that died before its manifest
    out = tmp_path / "out"
    result = cli(
        "--config", str(german_config), "restore", "files", "--date", DAY, "--path", "var/www/uploads/class-5a",
        "--to", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    archive = next(o for o in dump.manifest["objects"] if o["kind"] == "files")
    assert _lines(result.stdout) == [
        "Übersprungen: Der Dump vom 26.11.2026 03:30 (20261126T0230Z) hat keine manifest.json "
        "(ein Dump ohne sie gilt als fehlgeschlagen).",
        f"1 Datei (19 Bytes) unter var/www/uploads/class-5a nach {out.resolve()} wiederhergestellt",
        f"  aus dem {SLOT} von {SOURCE} (Europe/Zurich), geprüft:",
        f"  files.tar.gz: {archive['bytes']} Bytes, SHA-256 {archive['sha256']}, wie im Manifest aufgeführt.",
    ]
    assert _english(result.stdout) == []
    assert _tree(out) == {"var/www/uploads/class-5a/timetable.pdf": b"%PDF-1.4 timetable\n"}


def test_files_of_a_day_without_dump_names_the_nearest_day_in_german(
    aws: None, cli: Cli, german_config: Path, tmp_path: Path
) -> None:
    write_dump(SOURCE, datetime(2026, 7, 14, 23, 30, tzinfo=UTC))  # 01:30 on 15.07 in Zurich
    result = cli(
        "--config",
        str(german_config),
        "restore",
        "files",
        "--date",
        "2026-07-14",
        "--to",
        str(tmp_path / "b"),
    )
    assert result.exit_code == 1
    assert _error(result) == (
        f"Es gibt keinen Dump von {SOURCE} am 14.07.2026 (Europe/Zurich). "
        "Der nächste Tag mit einem verwendbaren Dump: 2026-07-15 (als --date angeben)."
    )
    assert _english(result.stderr) == []


def test_files_of_a_failed_day_names_why_and_the_nearest_days_in_german(
    aws: None, cli: Cli, german_config: Path, tmp_path: Path
) -> None:
    write_dump(SOURCE, NIGHT - timedelta(days=2))
    write_dump(SOURCE, NIGHT - timedelta(days=1), status="failed")
    write_dump(SOURCE, NIGHT + timedelta(days=1))
    result = cli(
        "--config",
        str(german_config),
        "restore",
        "files",
        "--date",
        "2026-11-25",
        "--to",
        str(tmp_path / "o"),
    )
    assert result.exit_code == 1
    assert _error(result) == (
        f"Kein verwendbarer Dump von {SOURCE} am 25.11.2026 (Europe/Zurich): der Dump vom 25.11.2026 01:30 "
        "(20261125T0030Z) meldet den Status «failed». Die nächsten Tage mit einem verwendbaren Dump: "
        "2026-11-24 und 2026-11-27 (einen davon als --date angeben)."
    )
    assert _english(result.stderr) == []


def test_files_path_that_matches_nothing_is_told_in_german(
    aws: None, cli: Cli, german_config: Path, tmp_path: Path
) -> None:
    write_dump(SOURCE, NIGHT)
    result = cli(
        "--config", str(german_config), "restore", "files", "--date", DAY, "--path", "var/www/up",
        "--to", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert _error(result) == (
        f"In files.tar.gz aus dem {SLOT} liegt nichts unter --path var/www/up; var/www enthält: "
        "var/www/index.php, var/www/uploads. Es wurde nichts geschrieben."
    )
    assert _english(result.stderr) == []
    assert _left(tmp_path) == []


def test_files_bad_usage_is_told_in_german(aws: None, cli: Cli, german_config: Path, tmp_path: Path) -> None:
    config = ("--config", str(german_config))
    bad_day = cli(*config, "restore", "files", "--date", "26.11.2026", "--to", str(tmp_path / "out"))
    assert bad_day.exit_code == 2
    assert _error(bad_day) == "--date '26.11.2026' ist kein Tag in der Form 2026-11-26 (JJJJ-MM-TT)."
    dotdot = cli(
        *config, "restore", "files", "--date", DAY, "--path", "var/../etc", "--to", str(tmp_path / "o")
    )
    assert dotdot.exit_code == 2
    assert _error(dotdot) == (
        "--path 'var/../etc' enthält '..'; geben Sie einen Pfad innerhalb des Archivs an, z. B. var/www/uploads."
    )
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_bytes(b"mine\n")
    not_empty = cli(*config, "restore", "files", "--date", DAY, "--to", str(full))
    assert not_empty.exit_code == 2
    assert _error(not_empty) == (
        f"--to {full} ist nicht leer; stellen Sie in einen neuen oder leeren Ordner wieder her (es wird nie "
        "etwas überschrieben)."
    )
    no_dumps = cli(*config, "restore", "files", "--date", DAY, "--to", str(tmp_path / "o"))
    assert no_dumps.exit_code == 1
    assert _error(no_dumps) == (
        f"In s3://{BUCKET}/dumps/ gibt es überhaupt keine Dumps: Es gibt nichts, woraus wiederhergestellt "
        "werden könnte."
    )
    for result in (bad_day, dotdot, not_empty, no_dumps):
        assert _english(result.stderr) == []


def test_files_corrupted_archive_is_refused_in_german(
    aws: None, cli: Cli, german_config: Path, tmp_path: Path
) -> None:
    dump = write_dump(SOURCE, NIGHT)
    key = dump.keys["files.tar.gz"]
    good = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    bad = _same_size_other_bytes(good)
    replace_object(key, bad)
    result = cli(
        "--config", str(german_config), "restore", "files", "--date", DAY, "--to", str(tmp_path / "out")
    )
    assert result.exit_code == 1
    assert _error(result) == (
        f"files.tar.gz aus dem {SLOT} abgelehnt: Die SHA-256-Prüfsumme ist {hashlib.sha256(bad).hexdigest()}, "
        f"laut Manifest {hashlib.sha256(good).hexdigest()} (je {len(good)} Bytes); das Objekt wurde nach dem "
        "Dump verändert oder ersetzt. Es wurde nichts geschrieben; versuchen Sie ein anderes --date."
    )
    assert _english(result.stderr) == []
    assert _left(tmp_path) == []


def test_unsafe_members_are_named_in_german(aws: None, cli: Cli, german_config: Path, tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in {"var/www/ok.txt": b"ok\n", "var/../../escape.txt": b"evil\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("var/www/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        device = tarfile.TarInfo("var/www/null")
        device.type = tarfile.CHRTYPE
        tar.addfile(device)
    _put_slot(NIGHT, {"files.tar.gz": ("files", gzip.compress(raw.getvalue()))})
    out = tmp_path / "out"
    result = cli("--config", str(german_config), "restore", "files", "--date", DAY, "--to", str(out))
    assert result.exit_code == 0, result.stderr
    assert _lines(result.stdout)[0] == f"1 Datei (3 Bytes) nach {out.resolve()} wiederhergestellt"
    assert _lines(result.stdout)[-1] == (
        "Nicht wiederhergestellt, weil das Entpacken unsicher wäre: var/../../escape.txt (ein Pfad, der '..' "
        "enthält), var/www/passwd (ein Link auf einen absoluten Pfad), var/www/null (ein Gerät oder eine "
        "andere Spezialdatei)."
    )
    assert _english(result.stdout) == []
    assert _tree(out) == {"var/www/ok.txt": b"ok\n"}


# ---------------------------------------------------------------- restore dump


def test_dump_success_is_told_in_german(aws: None, cli: Cli, german_config: Path, tmp_path: Path) -> None:
    dump = write_dump(SOURCE, NIGHT)
    target = tmp_path / "school.sql"
    result = cli("--config", str(german_config), "restore", "dump", "--date", DAY, "--to", str(target))
    assert result.exit_code == 0, result.stderr
    db = next(o for o in dump.manifest["objects"] if o["kind"] == "db")
    size = f"{len(MYSQL_DUMP) / 1024:.1f}".replace(".", ",")
    file = target.resolve()
    assert _lines(result.stdout) == [
        f"SQL der Datenbank school ({size} KiB) nach {file} geschrieben",
        f"  aus dem {SLOT} von {SOURCE} (Europe/Zurich), geprüft:",
        f"  db-school.sql.gz: {db['bytes']} Bytes, SHA-256 {db['sha256']}, wie im Manifest aufgeführt.",
        "Als Nächstes: Laden Sie die Datei in eine neue, leere Datenbank, prüfen Sie diese und stellen Sie "
        "dann die Anwendung um:",
        f"  mysql -h {HOST} -u <master user> -p -e 'CREATE DATABASE school_restored'",
        "  Bei RDS zuerst log_bin_trust_function_creators=1 in der Parametergruppe der Instanz setzen (der "
        "Dump enthält Trigger und Routinen), sonst bricht das Laden mit ERROR 1419 ab",
        f"  mysql -h {HOST} -u <master user> -p school_restored < {file}",
    ]
    assert _english("\n".join(_lines(result.stdout)[:4])) == []
    assert target.read_bytes() == MYSQL_DUMP


def test_dump_stored_compressed_is_told_in_german(
    aws: None, cli: Cli, german_config: Path, tmp_path: Path
) -> None:
    write_dump(SOURCE, NIGHT)
    target = tmp_path / "school.sql.gz"
    result = cli("--config", str(german_config), "restore", "dump", "--date", DAY, "--to", str(target))
    assert result.exit_code == 0, result.stderr
    size = target.stat().st_size
    assert _lines(result.stdout)[0] == (
        f"gzip-komprimierter Dump der Datenbank school ({size} Bytes, wie gespeichert) nach {target.resolve()} "
        "geschrieben"
    )
    assert (
        _lines(result.stdout)[-1]
        == f"  gunzip -c {target.resolve()} | mysql -h {HOST} -u <master user> -p school_restored"
    )


def test_dump_errors_are_told_in_german(aws: None, cli: Cli, german_config: Path, tmp_path: Path) -> None:
    config = ("--config", str(german_config))
    _put_slot(
        NIGHT,
        {
            "db-school.sql.gz": ("db", gzip.compress(MYSQL_DUMP)),
            "db-moodle.sql.gz": ("db", gzip.compress(MYSQL_DUMP.replace(b"school", b"moodle"))),
        },
    )
    several = cli(*config, "restore", "dump", "--date", DAY, "--to", str(tmp_path / "x.sql"))
    assert several.exit_code == 2
    assert _error(several) == (
        f"Der {SLOT} enthält Dumps mehrerer Datenbanken (school, moodle); wählen Sie eine mit --db."
    )
    unknown = cli(*config, "restore", "dump", "--date", DAY, "--db", "wiki", "--to", str(tmp_path / "x.sql"))
    assert unknown.exit_code == 2
    assert _error(unknown) == f"Der {SLOT} enthält keinen Dump von --db wiki; er enthält: school, moodle."
    zstd = cli(
        *config, "restore", "dump", "--date", DAY, "--db", "school", "--to", str(tmp_path / "x.sql.zst")
    )
    assert zstd.exit_code == 2
    assert _error(zstd) == (
        "--to x.sql.zst bezeichnet eine zstd-Datei, aber db-school.sql.gz ist mit gzip komprimiert gespeichert; "
        "lassen Sie den Namen auf .sql enden (entpackt) oder so wie gespeichert."
    )
    existing = tmp_path / "old.sql"
    existing.write_bytes(b"older restore\n")
    again = cli(*config, "restore", "dump", "--date", DAY, "--to", str(existing))
    assert again.exit_code == 2
    assert _error(again) == (
        f"--to {existing} existiert bereits; wählen Sie einen neuen Dateinamen (es wird nie etwas überschrieben)."
    )
    for result in (several, unknown, zstd, again):
        assert _english(result.stderr) == []
    assert _left(tmp_path) == ["old.sql"]


def test_dump_of_no_day_nearby_is_told_in_german(
    aws: None, cli: Cli, german_config: Path, tmp_path: Path
) -> None:
    write_dump(SOURCE, NIGHT - timedelta(days=30))
    result = cli(
        "--config", str(german_config), "restore", "dump", "--date", DAY, "--to", str(tmp_path / "s.sql")
    )
    assert result.exit_code == 1
    assert _error(result) == (
        f"Es gibt keinen Dump von {SOURCE} am 26.11.2026 (Europe/Zurich). Auch zwischen dem 19.11.2026 und "
        "dem 03.12.2026 hat kein Tag einen verwendbaren Dump (siehe `backupctl status`)."
    )
    assert _english(result.stderr) == []

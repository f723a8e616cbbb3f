"""backupctl restore files / restore dump against moto: the slot of a local day, the manifest's keys,
verification before anything lands, and nothing left behind when a restore is refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import rich.console

from cli.backupctl import restore_files
from lambdas.common.contracts import dump_folder
from lambdas.common.manifest import DumpFolder
from tests.cli.conftest import BUCKET, FILES, MYSQL_DUMP, NIGHT, Result, replace_object, tar_gz, write_dump

SOURCE = "i-0abc1234def567890"
OTHER = "i-0fed9876cba543210"
DAY = "2026-11-26"  # NIGHT (00:30 UTC) is 01:30 on this day in Zurich

Cli = Callable[..., Result]


def _tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` by its relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _stored(key: str) -> bytes:
    return boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _put_slot(
    when: datetime, objects: dict[str, tuple[str, bytes]], *, extra: dict[str, bytes] | None = None
) -> str:
    """A slot written by hand: ``objects`` name -> (kind, bytes) listed in the manifest, ``extra`` not."""
    s3 = boto3.client("s3")
    folder = dump_folder(SOURCE, when)
    listed = []
    for name, (kind, data) in objects.items():
        s3.put_object(Bucket=BUCKET, Key=folder + name, Body=data, IfNoneMatch="*")
        entry = {
            "key": folder + name,
            "kind": kind,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if kind == "db":
            entry["engine"] = "mysql"
        listed.append(entry)
    for name, data in (extra or {}).items():
        s3.put_object(Bucket=BUCKET, Key=folder + name, Body=data, IfNoneMatch="*")
    manifest = {
        "version": 1,
        "source": SOURCE,
        "started_at": f"{when:%Y-%m-%dT%H:%M:03Z}",
        "finished_at": f"{when + timedelta(minutes=4):%Y-%m-%dT%H:%M:%SZ}",
        "status": "ok",
        "objects": listed,
    }
    s3.put_object(Bucket=BUCKET, Key=folder + "manifest.json", Body=json.dumps(manifest).encode())
    return folder


def _same_size_other_bytes(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


# ---------------------------------------------------------------- restore files


def test_files_with_path_restores_exactly_that_folder(aws: None, cli: Cli, tmp_path: Path) -> None:
    write_dump(SOURCE, NIGHT)
    out = tmp_path / "out"
    result = cli("restore", "files", "--date", DAY, "--path", "/var/www/uploads/class-5a/", "--to", str(out))
    assert result.exit_code == 0, result.stderr
    assert _tree(out) == {
        "var/www/uploads/class-5a/timetable.pdf": FILES["var/www/uploads/class-5a/timetable.pdf"]
    }
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary file left next to it
    assert "Restored 1 file (19 bytes) under var/www/uploads/class-5a" in result.stdout
    assert "26.11.2026 01:30 (20261126T0030Z)" in result.stdout
    assert "Europe/Zurich" in result.stdout


def test_files_without_path_restores_the_whole_archive_into_an_empty_folder(
    aws: None, cli: Cli, tmp_path: Path
) -> None:
    write_dump(SOURCE, NIGHT)
    out = tmp_path / "out"
    out.mkdir()
    result = cli("restore", "files", "--date", DAY, "--to", str(out))
    assert result.exit_code == 0, result.stderr
    assert _tree(out) == FILES
    assert "Restored 4 files" in result.stdout


def test_files_json_is_one_object_with_the_verified_objects(aws: None, cli: Cli, tmp_path: Path) -> None:
    dump = write_dump(SOURCE, NIGHT)
    out = tmp_path / "out"
    result = cli("restore", "files", "--date", DAY, "--path", "var/www/uploads", "--to", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    archive = next(o for o in dump.manifest["objects"] if o["kind"] == "files")
    assert data["slot"] == dump.folder
    assert data["source"] == SOURCE
    assert data["time"] == "2026-11-26T01:30:00+01:00"
    assert data["objects"] == [
        {"key": archive["key"], "sha256": archive["sha256"], "bytes": archive["bytes"], "verified": True}
    ]
    assert sorted(data["restored"]) == [
        "var/www/uploads/class-5a/timetable.pdf",
        "var/www/uploads/class-5b/notes.txt",
    ]
    assert data["to"] == str(out.resolve())
    assert data["files"] == 2 and data["bytes"] == 25
    assert _tree(out) == {k: v for k, v in FILES.items() if k.startswith("var/www/uploads/")}


def test_path_matches_whole_components_and_names_what_exists(aws: None, cli: Cli, tmp_path: Path) -> None:
    write_dump(SOURCE, NIGHT)
    out = tmp_path / "out"
    result = cli("restore", "files", "--date", DAY, "--path", "var/www/up", "--to", str(out))
    assert result.exit_code == 1
    assert "lies under --path var/www/up" in result.stderr
    assert "var/www holds: var/www/index.php, var/www/uploads" in result.stderr
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a temporary file


def test_local_day_finds_the_summer_dump_of_the_utc_day_before(aws: None, cli: Cli, tmp_path: Path) -> None:
    dump = write_dump(SOURCE, datetime(2026, 7, 14, 23, 30, tzinfo=UTC))  # 01:30 on 15.07 in Zurich (CEST)
    found = cli("restore", "files", "--date", "2026-07-15", "--to", str(tmp_path / "a"), "--json")
    assert found.exit_code == 0, found.stderr
    assert found.json()["slot"] == dump.folder
    assert found.json()["time"] == "2026-07-15T01:30:00+02:00"
    assert _tree(tmp_path / "a") == FILES
    missed = cli("restore", "files", "--date", "2026-07-14", "--to", str(tmp_path / "b"))
    assert missed.exit_code == 1
    assert f"There is no dump of {SOURCE} on 2026-07-14 (Europe/Zurich)" in missed.stderr
    assert "The nearest day with a usable dump: 2026-07-15" in missed.stderr
    assert not (tmp_path / "b").exists()


def test_a_newer_slot_without_manifest_is_skipped_and_reported(aws: None, cli: Cli, tmp_path: Path) -> None:
    good = write_dump(SOURCE, NIGHT)
    write_dump(SOURCE, NIGHT + timedelta(hours=2), manifest=False)  # a run that died before its manifest
    result = cli("restore", "files", "--date", DAY, "--path", "etc", "--to", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert "Skipped the dump of 26.11.2026 03:30 (20261126T0230Z): it has no manifest.json" in result.stdout
    assert _tree(tmp_path / "out") == {"etc/hostname": b"web\n"}
    as_json = cli("restore", "files", "--date", DAY, "--to", str(tmp_path / "again"), "--json")
    assert as_json.json()["slot"] == good.folder
    assert [s["slot"] for s in as_json.json()["skipped"]] == [dump_folder(SOURCE, NIGHT + timedelta(hours=2))]
    assert "Skipped the dump of 26.11.2026 03:30" in as_json.stderr  # human lines stay off stdout


def test_a_day_without_usable_dump_names_the_nearest_days(aws: None, cli: Cli, tmp_path: Path) -> None:
    write_dump(SOURCE, NIGHT - timedelta(days=2))  # night of 24.11
    write_dump(SOURCE, NIGHT - timedelta(days=1), status="failed")  # night of 25.11, failed
    write_dump(SOURCE, NIGHT + timedelta(days=1))  # night of 27.11
    result = cli("restore", "files", "--date", "2026-11-25", "--to", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert f"No usable dump of {SOURCE} on 2026-11-25 (Europe/Zurich)" in result.stderr
    assert "(20261125T0030Z) reports status 'failed'" in result.stderr
    assert "The nearest days with a usable dump: 2026-11-24 and 2026-11-27" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_no_dump_anywhere_near_says_so(aws: None, cli: Cli, tmp_path: Path) -> None:
    write_dump(SOURCE, NIGHT - timedelta(days=30))
    result = cli("restore", "dump", "--date", DAY, "--to", str(tmp_path / "school.sql"))
    assert result.exit_code == 1
    assert "No day from 2026-11-19 to 2026-12-03 has a usable dump either" in result.stderr


@pytest.mark.parametrize(
    ("command", "target", "name"),
    [
        ("files", "out", "files.tar.gz"),
        ("dump", "school.sql", "db-school.sql.gz"),
        ("dump", "school.sql.gz", "db-school.sql.gz"),
    ],
)
def test_a_corrupted_object_is_refused_and_nothing_is_left(
    aws: None, cli: Cli, tmp_path: Path, command: str, target: str, name: str
) -> None:
    dump = write_dump(SOURCE, NIGHT)
    good = _stored(dump.keys[name])
    bad = _same_size_other_bytes(good)
    replace_object(dump.keys[name], bad)  # same size: the listing cannot tell, only the checksum can
    result = cli("restore", command, "--date", DAY, "--to", str(tmp_path / target))
    assert result.exit_code == 1
    assert f"Refused {name} of the dump of 26.11.2026 01:30 (20261126T0030Z)" in result.stderr
    assert hashlib.sha256(bad).hexdigest() in result.stderr
    assert hashlib.sha256(good).hexdigest() in result.stderr
    assert list(tmp_path.iterdir()) == []  # no destination, no temporary file


def test_a_truncated_object_is_refused_by_the_state_table(aws: None, cli: Cli, tmp_path: Path) -> None:
    dump = write_dump(SOURCE, NIGHT)
    good = _stored(dump.keys["files.tar.gz"])
    replace_object(dump.keys["files.tar.gz"], good[: len(good) // 2])
    result = cli("restore", "files", "--date", DAY, "--to", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert f"files.tar.gz has {len(good) // 2} bytes, the manifest says {len(good)}" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_object_cut_short_during_the_download_is_refused(
    aws: None, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when the listing still showed the full size (the object shrank since), the bytes decide."""
    dump = write_dump(SOURCE, NIGHT)
    key = dump.keys["db-school.sql.gz"]
    good = _stored(key)
    replace_object(key, good[:100])
    real = restore_files.list_dump_day

    def stale_listing(*args: Any) -> list[DumpFolder]:
        folders = real(*args)
        for folder in folders:
            if key in folder.sizes:
                folder.sizes[key] = len(good)
        return folders

    monkeypatch.setattr(restore_files, "list_dump_day", stale_listing)
    result = cli("restore", "dump", "--date", DAY, "--to", str(tmp_path / "school.sql"))
    assert result.exit_code == 1
    assert (
        f"Refused db-school.sql.gz of the dump of 26.11.2026 01:30 (20261126T0030Z): it has 100 bytes, the manifest says {len(good)}"
        in result.stderr
    )
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_leaves_no_temporary_file(
    aws: None, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dump(SOURCE, NIGHT)

    def interrupted(*_args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(restore_files, "extract", interrupted)  # the archive is downloaded by then
    result = cli("restore", "files", "--date", DAY, "--to", str(tmp_path / "out"))
    assert result.exit_code == 130  # click's exit status for Ctrl-C
    monkeypatch.setattr(restore_files, "_place_file", interrupted)  # the dump is complete by then
    result = cli("restore", "dump", "--date", DAY, "--to", str(tmp_path / "school.sql"))
    assert result.exit_code == 130  # click's exit status for Ctrl-C
    assert list(tmp_path.iterdir()) == []


def test_keys_come_from_the_manifest_never_guessed(aws: None, cli: Cli, tmp_path: Path) -> None:
    """A slot completed by attempt 2: the first attempt's files.tar.gz is there, but not the listed one."""
    wanted = {"var/www/index.php": b"attempt 2\n"}
    _put_slot(
        NIGHT,
        {
            "files.attempt-2.tar.gz": ("files", tar_gz(wanted)),
            "db-school.attempt-2.sql.gz": ("db", gzip.compress(MYSQL_DUMP)),
        },
        extra={"files.tar.gz": tar_gz({"var/www/index.php": b"attempt 1, unfinished\n"})},
    )
    result = cli("restore", "files", "--date", DAY, "--to", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert _tree(tmp_path / "out") == wanted
    dumped = cli("restore", "dump", "--date", DAY, "--db", "school", "--to", str(tmp_path / "school.sql"))
    assert dumped.exit_code == 0, dumped.stderr
    assert (tmp_path / "school.sql").read_bytes() == MYSQL_DUMP


def test_unsafe_members_are_not_unpacked_and_are_named(aws: None, cli: Cli, tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        entries = {"var/www/ok.txt": b"ok\n", "var/../../escape.txt": b"evil\n", "var/www/../x.txt": b"x\n"}
        for name, data in entries.items():
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
    out = tmp_path / "restore" / "out"
    out.parent.mkdir()
    result = cli("restore", "files", "--date", DAY, "--to", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    assert _tree(out) == {"var/www/ok.txt": b"ok\n"}
    assert not (out / "var/www/passwd").is_symlink()
    assert not (tmp_path / "escape.txt").exists() and not (out.parent / "escape.txt").exists()
    refused = {r["path"]: r["reason"] for r in result.json()["refused"]}
    assert refused == {
        "var/../../escape.txt": "a path with '..' in it",
        "var/www/../x.txt": "a path with '..' in it",
        "var/www/passwd": "a link to an absolute path",
        "var/www/null": "a device or other special file",
    }


def test_a_zstd_archive_is_restored(aws: None, cli: Cli, tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    raw = gzip.decompress(tar_gz(FILES))
    _put_slot(NIGHT, {"files.tar.zst": ("files", zstandard.ZstdCompressor().compress(raw))})
    result = cli("restore", "files", "--date", DAY, "--path", "etc", "--to", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert _tree(tmp_path / "out") == {"etc/hostname": b"web\n"}


# ---------------------------------------------------------------- restore dump


def test_dump_as_sql_is_the_decompressed_dump(aws: None, cli: Cli, tmp_path: Path) -> None:
    write_dump(SOURCE, NIGHT)
    target = tmp_path / "school.sql"
    result = cli("restore", "dump", "--date", DAY, "--to", str(target))
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes() == MYSQL_DUMP
    assert [p.name for p in tmp_path.iterdir()] == ["school.sql"]
    assert "Wrote the SQL of database school" in result.stdout
    assert (
        "mysql -h school-db.abcdefghijkl.eu-central-2.rds.amazonaws.com -u <master user> -p school_restored <"
        in result.stdout
    )


def test_a_terminal_sees_the_download_progress_on_stderr(
    aws: None, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dump(SOURCE, NIGHT)
    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda _self: True))
    result = cli(
        "restore", "files", "--date", DAY, "--path", "var/www/index.php", "--to", str(tmp_path / "out")
    )
    assert result.exit_code == 0, result.stderr
    assert "files.tar.gz" in result.stderr and "bytes" in result.stderr  # the bar, cleared when done
    assert "files.tar.gz" not in result.stdout.split("verified:")[0]  # the result lines stay clean
    assert _tree(tmp_path / "out") == {"var/www/index.php": FILES["var/www/index.php"]}


def test_dump_under_another_name_is_the_stored_object(aws: None, cli: Cli, tmp_path: Path) -> None:
    dump = write_dump(SOURCE, NIGHT)
    target = tmp_path / "school.sql.gz"
    result = cli("restore", "dump", "--date", DAY, "--to", str(target), "--json")
    assert result.exit_code == 0, result.stderr
    stored = _stored(dump.keys["db-school.sql.gz"])
    assert target.read_bytes() == stored
    assert gzip.decompress(target.read_bytes()) == MYSQL_DUMP
    data = result.json()
    db = next(o for o in dump.manifest["objects"] if o["kind"] == "db")
    assert data["objects"] == [
        {"key": db["key"], "sha256": db["sha256"], "bytes": db["bytes"], "verified": True}
    ]
    assert data["decompressed"] is False and data["db"] == "school" and data["to"] == str(target.resolve())
    assert data["next_steps"][-1].startswith(f"gunzip -c {target.resolve()} | mysql -h ")


def test_dump_picks_the_database_named_by_db(aws: None, cli: Cli, tmp_path: Path) -> None:
    other = MYSQL_DUMP.replace(b"school", b"moodle")
    _put_slot(
        NIGHT,
        {
            "db-school.sql.gz": ("db", gzip.compress(MYSQL_DUMP)),
            "db-moodle.sql.gz": ("db", gzip.compress(other)),
        },
    )
    ambiguous = cli("restore", "dump", "--date", DAY, "--to", str(tmp_path / "x.sql"))
    assert ambiguous.exit_code == 2
    assert "holds dumps of several databases (school, moodle); choose one with --db" in ambiguous.stderr
    unknown = cli("restore", "dump", "--date", DAY, "--db", "wiki", "--to", str(tmp_path / "x.sql"))
    assert unknown.exit_code == 2 and "holds no dump of --db wiki; it holds: school, moodle" in unknown.stderr
    chosen = cli("restore", "dump", "--date", DAY, "--db", "moodle", "--to", str(tmp_path / "moodle.sql"))
    assert chosen.exit_code == 0, chosen.stderr
    assert (tmp_path / "moodle.sql").read_bytes() == other
    assert [p.name for p in tmp_path.iterdir()] == ["moodle.sql"]


def test_dump_refuses_a_compression_the_file_name_contradicts(aws: None, cli: Cli, tmp_path: Path) -> None:
    write_dump(SOURCE, NIGHT)
    result = cli("restore", "dump", "--date", DAY, "--to", str(tmp_path / "school.sql.zst"))
    assert result.exit_code == 2
    assert "names a zstd file, but db-school.sql.gz is stored gzip" in result.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- bad usage


@pytest.mark.parametrize("day", ["26.11.2026", "2026-11-31", "20261126", "yesterday"])
def test_a_malformed_date_is_bad_usage(aws: None, cli: Cli, tmp_path: Path, day: str) -> None:
    result = cli("restore", "files", "--date", day, "--to", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert f"--date {day!r} is not a day like 2026-11-26" in result.stderr


def test_a_path_out_of_the_archive_is_bad_usage(aws: None, cli: Cli, tmp_path: Path) -> None:
    result = cli("restore", "files", "--date", DAY, "--path", "var/../../etc", "--to", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "--path 'var/../../etc' contains '..'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_sources_unknown_ambiguous_and_chosen(aws: None, cli: Cli, tmp_path: Path) -> None:
    write_dump(SOURCE, NIGHT)
    write_dump(OTHER, NIGHT, files={"etc/hostname": b"other\n"})
    unknown = cli(
        "restore", "files", "--date", DAY, "--source", "i-0000000000000000f", "--to", str(tmp_path / "a")
    )
    assert unknown.exit_code == 2
    assert "no dumps of --source i-0000000000000000f" in unknown.stderr and SOURCE in unknown.stderr
    several = cli("restore", "dump", "--date", DAY, "--to", str(tmp_path / "a.sql"))
    assert several.exit_code == 2
    assert f"several sources ({SOURCE}, {OTHER}); choose one with --source" in several.stderr
    assert list(tmp_path.iterdir()) == []
    chosen = cli(
        "restore", "files", "--date", DAY, "--source", OTHER, "--path", "etc", "--to", str(tmp_path / "a")
    )
    assert chosen.exit_code == 0, chosen.stderr
    assert _tree(tmp_path / "a") == {"etc/hostname": b"other\n"}


def test_an_existing_destination_is_never_overwritten(aws: None, cli: Cli, tmp_path: Path) -> None:
    write_dump(SOURCE, NIGHT)
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_bytes(b"mine\n")
    full = cli("restore", "files", "--date", DAY, "--to", str(folder))
    assert full.exit_code == 2 and "is not empty" in full.stderr
    assert _tree(folder) == {"keep.txt": b"mine\n"}
    existing = tmp_path / "school.sql"
    existing.write_bytes(b"older restore\n")
    again = cli("restore", "dump", "--date", DAY, "--to", str(existing))
    assert again.exit_code == 2 and "exists already" in again.stderr
    assert existing.read_bytes() == b"older restore\n"
    nowhere = cli("restore", "dump", "--date", DAY, "--to", str(tmp_path / "missing" / "school.sql"))
    assert nowhere.exit_code == 2 and "does not exist: create it first" in nowhere.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "school.sql"]


def test_a_kill_during_the_download_leaves_no_temporary_file(
    aws: None, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM (or a closed SSH session, SIGHUP) in the middle of a restore cleans up like Ctrl-C."""
    import os
    import signal

    write_dump(SOURCE, NIGHT)
    original = restore_files.download_raw

    def killed(*args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    monkeypatch.setattr(restore_files, "download_raw", killed)
    result = cli("restore", "files", "--date", DAY, "--to", str(tmp_path / "out"))
    assert result.exit_code != 0
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handed back after the restore

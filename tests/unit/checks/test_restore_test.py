"""restore_test against moto: a good dump passes; replaced, truncated or incomplete objects fail, and the
record under reports/restore-tests/ says why."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest
import time_machine

from lambdas.common.contracts import dump_folder
from lambdas.common.jobs import restore_test as restore
from lambdas.common.jobs.restore_test import RestoreTestFailed
from lambdas.restore_test.handler import handler
from tests.unit.checks.conftest import BUCKET, MYSQL_DUMP, NOW, Dump, emf_metrics, tar_gz

SERVER = "i-0123456789abcdef0"
RECORD = "reports/restore-tests/20261127T0630Z.json"


def _record() -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=RECORD)["Body"].read()
    record: dict[str, Any] = json.loads(body)
    return record


def _fails(lambda_context: Any) -> str:
    with pytest.raises(RestoreTestFailed) as caught:
        handler({"scheduled_time": "2026-11-27T06:30:00Z"}, lambda_context)
    return str(caught.value)


def _replace(key: str, data: bytes, fix_manifest: Dump | None = None) -> None:
    """Overwrite an object; with ``fix_manifest`` the manifest's size is updated (only the hash differs)."""
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    if fix_manifest is not None:
        for obj in fix_manifest.manifest["objects"]:
            if obj["key"] == key:
                obj["bytes"] = len(data)
        s3.put_object(
            Bucket=BUCKET, Key=fix_manifest.folder + "manifest.json", Body=json.dumps(fix_manifest.manifest)
        )


def test_newest_dump_passes_and_the_record_and_metrics_say_so(
    make_dump: Callable[..., Dump], lambda_context: Any, capsys: Any
) -> None:
    make_dump(SERVER, NOW - timedelta(days=2))
    newest = make_dump(SERVER, NOW - timedelta(hours=4))
    result = handler({}, lambda_context)
    assert result["passed"] is True
    assert result["dump"] == newest.folder
    assert result["record"] == f"s3://{BUCKET}/{RECORD}"
    record = _record()
    assert record["passed"] is True
    assert record["problems"] == []
    files = next(o for o in record["objects"] if o["kind"] == "files")
    assert files["tar_members"] == 2
    assert files["sha256"] == files["expected_sha256"]
    found = {m["name"]: m["value"] for m in emf_metrics(capsys.readouterr().out)}
    assert found["RestoreTestPassed"] == 1
    assert found["RestoreTestDurationSeconds"] >= 0


def test_a_replaced_object_is_found_by_its_sha256(
    make_dump: Callable[..., Dump], lambda_context: Any, capsys: Any
) -> None:
    dump = make_dump(SERVER, NOW - timedelta(hours=4))
    evil = tar_gz({"etc/hostname": b"pwned\n", "var/www/index.php": b"<?php system($_GET['c']);\n"})
    _replace(dump.keys["files.tar.gz"], evil, fix_manifest=dump)
    message = _fails(lambda_context)
    assert f"files.tar.gz: SHA-256 {hashlib.sha256(evil).hexdigest()} does not match" in message
    record = _record()
    assert record["passed"] is False
    assert any("does not match the manifest" in p for p in record["problems"])
    found = {m["name"]: m["value"] for m in emf_metrics(capsys.readouterr().out)}
    assert found["RestoreTestPassed"] == 0


def test_a_truncated_gzip_fails_as_truncated_and_by_size(
    make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    dump = make_dump(SERVER, NOW - timedelta(hours=4))
    whole = gzip.compress(MYSQL_DUMP)
    _replace(dump.keys["db-school.sql.gz"], whole[: len(whole) // 2])
    message = _fails(lambda_context)
    assert "db-school.sql.gz ends in the middle of its gzip stream (truncated)" in message
    assert f"the manifest says {len(whole)}" in message


def test_a_sql_dump_without_completion_line_fails(
    make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    make_dump(SERVER, NOW - timedelta(hours=4), sql=MYSQL_DUMP.replace(b"-- Dump completed", b"-- oops"))
    assert "does not end with '-- Dump completed'" in _fails(lambda_context)


def test_a_postgres_dump_needs_the_postgres_completion_line(
    make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    make_dump(SERVER, NOW - timedelta(hours=4), engine="postgres")
    assert "'-- PostgreSQL database dump complete'" in _fails(lambda_context)
    sql = b"--\n-- PostgreSQL database dump\n--\nCOPY x FROM stdin;\n\\.\n--\n-- PostgreSQL database dump complete\n--\n"
    make_dump(SERVER, NOW - timedelta(hours=3), engine="postgres", sql=sql)
    assert handler({"scheduled_time": "2026-11-27T06:31:00Z"}, lambda_context)["passed"] is True


def test_a_missing_object_fails(make_dump: Callable[..., Dump], lambda_context: Any) -> None:
    dump = make_dump(SERVER, NOW - timedelta(hours=4))
    boto3.client("s3").delete_object(Bucket=BUCKET, Key=dump.keys["files.tar.gz"])
    assert "files.tar.gz could not be downloaded (NoSuchKey)" in _fails(lambda_context)


def test_no_dump_in_seven_days_is_a_failure_with_a_record(
    make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    make_dump(SERVER, NOW - timedelta(days=8))
    make_dump(SERVER, NOW - timedelta(hours=2), manifest=False)
    assert "No successful dump" in _fails(lambda_context)
    assert _record()["dump"] is None


def test_newest_skips_dumps_whose_manifest_reports_failure(
    make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    good = make_dump(SERVER, NOW - timedelta(days=1))
    make_dump(SERVER, NOW - timedelta(hours=2), status="failed")
    assert handler({}, lambda_context)["dump"] == good.folder


def test_random_pick_stays_within_seven_days(
    make_dump: Callable[..., Dump], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTORE_TEST_PICK", "random")
    recent = {make_dump(SERVER, NOW - timedelta(days=d)).folder for d in (1, 3, 6)}
    make_dump(SERVER, NOW - timedelta(days=9))
    runs = [{"scheduled_time": f"2026-11-27T06:{minute:02d}:00Z"} for minute in range(12)]  # one record each
    picked = {handler(event, lambda_context)["dump"] for event in runs}
    assert picked <= recent
    assert len(picked) > 1


def test_a_zstd_dump_fails_clearly_when_python_cannot_read_zstd(
    make_dump: Callable[..., Dump], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = make_dump(SERVER, NOW - timedelta(hours=4))
    key = dump.keys["db-school.sql.gz"].replace(".gz", ".zst")
    obj = dump.manifest["objects"][1]
    boto3.client("s3").copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": obj["key"]})
    obj["key"] = key
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key=dump.folder + "manifest.json", Body=json.dumps(dump.manifest)
    )
    monkeypatch.setattr(restore, "zstd_module", lambda: None)
    assert "db-school.sql.zst cannot check zstd" in _fails(lambda_context)


def test_streaming_never_holds_a_whole_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """2 MiB of highly compressible SQL comes out in pieces of at most OUT_LIMIT bytes."""
    monkeypatch.setattr(restore, "OUT_LIMIT", 64 * 1024)
    data = gzip.compress(b"INSERT INTO t VALUES (1);\n" * 80_000 + b"-- Dump completed\n")
    stream = restore.CheckedStream([data[i : i + 4096] for i in range(0, len(data), 4096)], restore._Gzip())
    sizes = []
    while piece := stream.read(256 * 1024):
        sizes.append(len(piece))
    assert stream.tail.endswith(b"-- Dump completed\n")
    assert stream.raw_bytes == len(data)
    assert stream.sha256.hexdigest() == hashlib.sha256(data).hexdigest()
    assert max(sizes) <= 256 * 1024 + 64 * 1024


def _zstd_dump(when_hours_ago: int, truncate: bool = False) -> str:
    """A dump written with zstd, as the dump script does with compression=zstd."""
    import zstandard  # the Lambda runtime (Python 3.14) has compression.zstd; here the zstandard package

    folder = dump_folder(SERVER, NOW - timedelta(hours=when_hours_ago))
    tar = gzip.decompress(tar_gz({"etc/hostname": b"web\n", "var/www/index.php": b"<?php echo 'hi';\n"}))
    parts = {
        "files.tar.zst": zstandard.ZstdCompressor(level=2).compress(tar),
        "db-school.sql.zst": zstandard.ZstdCompressor(level=2).compress(MYSQL_DUMP),
    }
    if truncate:
        parts["db-school.sql.zst"] = parts["db-school.sql.zst"][:-40]
    s3 = boto3.client("s3")
    objects = []
    for name, data in parts.items():
        s3.put_object(Bucket=BUCKET, Key=folder + name, Body=data)
        entry = {
            "key": folder + name,
            "kind": "files" if name.startswith("files") else "db",
            "bytes": len(data),
        }
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        if entry["kind"] == "db":
            entry["engine"] = "mysql"
        objects.append(entry)
    when = NOW - timedelta(hours=when_hours_ago)
    manifest = {
        "version": 1,
        "source": SERVER,
        "started_at": f"{when:%Y-%m-%dT%H:%M:03Z}",
        "finished_at": f"{when + timedelta(minutes=4):%Y-%m-%dT%H:%M:%SZ}",
        "status": "ok",
        "objects": objects,
    }
    s3.put_object(Bucket=BUCKET, Key=folder + "manifest.json", Body=json.dumps(manifest))
    return folder


def test_a_zstd_dump_is_checked_end_to_end(aws: None, lambda_context: Any) -> None:
    folder = _zstd_dump(3)
    result = handler({}, lambda_context)
    assert result["dump"] == folder
    assert result["passed"] is True


def test_a_truncated_zstd_dump_fails(aws: None, lambda_context: Any) -> None:
    _zstd_dump(3, truncate=True)
    message = _fails(lambda_context)
    assert "db-school.sql.zst" in message


def _records() -> dict[str, str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="reports/restore-tests/")
    return {o["Key"]: o["ETag"] for o in listed.get("Contents", [])}


def test_a_repeated_run_of_one_scheduled_time_returns_its_record_and_checks_nothing_again(
    make_dump: Callable[..., Dump], lambda_context: Any, capsys: Any
) -> None:
    dump = make_dump(SERVER, NOW - timedelta(hours=4))
    event = {"scheduled_time": "2026-11-27T06:30:00Z"}
    first = handler(event, lambda_context)
    assert (first["passed"], first["repeated"]) == (True, False)
    written = _records()
    assert list(written) == [RECORD]

    # The retry comes later in the day (its own clock), after the dump was damaged: it must not check
    # again, must not write a second record and must answer what the scheduled run found.
    _replace(dump.keys["db-school.sql.gz"], b"garbage", fix_manifest=dump)
    capsys.readouterr()
    with time_machine.travel(NOW + timedelta(hours=3), tick=False):
        again = handler(event, lambda_context)
    assert (again["passed"], again["repeated"]) == (True, True)
    assert again["started_at"] == first["started_at"]
    assert _records() == written
    # A new scheduled time is a new test: it finds the damage and writes its own record.
    assert "does not match the manifest" in _fails_at("2026-11-27T09:30:00Z", lambda_context)
    assert sorted(_records()) == [RECORD, "reports/restore-tests/20261127T0930Z.json"]


def _fails_at(scheduled: str, lambda_context: Any) -> str:
    with pytest.raises(RestoreTestFailed) as caught:
        handler({"scheduled_time": scheduled}, lambda_context)
    return str(caught.value)


def test_a_repeated_failed_run_fails_again_from_its_record_and_says_so(
    make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    make_dump(SERVER, NOW - timedelta(days=9))  # nothing in the last week
    first = _fails(lambda_context)
    written = _records()
    second = _fails(lambda_context)
    assert "recorded by an earlier run for this time: reports/restore-tests/20261127T0630Z.json" in second
    assert first.split(": ", 1)[1] in second
    assert _records() == written


def test_a_run_that_loses_the_race_for_its_record_returns_the_winners_record(
    make_dump: Callable[..., Dump], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two invocations of one scheduled time at once: the record is created with If-None-Match, so the
    second writer gets 412, keeps the first record and reports it as repeated."""
    from lambdas.restore_test import handler as entry

    make_dump(SERVER, NOW - timedelta(hours=4))
    winner = {"scheduled_time": "2026-11-27T06:30:00Z", "passed": False, "problems": ["the other run"]}
    make_client = entry.s3_client

    def racing_client() -> Any:
        client = make_client()

        def other_run_writes_first(params: dict[str, Any], **_: Any) -> None:
            if params["Key"] == RECORD and not _records():
                other = boto3.client("s3")  # the other run, writing as every run does: create-only
                other.put_object(Bucket=BUCKET, Key=RECORD, Body=json.dumps(winner), IfNoneMatch="*")

        client.meta.events.register("provide-client-params.s3.PutObject", other_run_writes_first)
        return client

    monkeypatch.setattr(entry, "s3_client", racing_client)
    with pytest.raises(RestoreTestFailed, match="the other run"):
        handler({"scheduled_time": "2026-11-27T06:30:00Z"}, lambda_context)
    assert _record() == winner


def test_a_first_run_does_not_depend_on_how_s3_answers_a_read_of_a_missing_record(
    make_dump: Callable[..., Dump], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 answers GetObject of a missing key with 403 AccessDenied to a role whose ListBucket does not
    cover the request; the job must find out "no record yet" by listing, not by reading."""
    from botocore.awsrequest import AWSResponse

    from lambdas.restore_test import handler as entry

    make_dump(SERVER, NOW - timedelta(hours=4))
    make_client = entry.s3_client
    reads: list[str] = []

    def strict_client() -> Any:
        client = make_client()

        def note_key(params: dict[str, Any], **_: Any) -> None:
            reads.append(params["Key"])

        def missing_is_forbidden(**_: Any) -> Any:
            if reads[-1].startswith("reports/") and reads[-1] not in _records():
                denied = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
                return AWSResponse("https://s3", 403, {}, None), denied
            return None

        client.meta.events.register("before-parameter-build.s3.GetObject", note_key)
        client.meta.events.register("before-call.s3.GetObject", missing_is_forbidden)
        return client

    monkeypatch.setattr(entry, "s3_client", strict_client)
    event = {"scheduled_time": "2026-11-27T06:30:00Z"}
    assert handler(event, lambda_context)["repeated"] is False
    assert RECORD not in reads  # never asked for the record that was not there
    assert handler(event, lambda_context)["repeated"] is True
    assert RECORD in reads  # ... and read it once it was

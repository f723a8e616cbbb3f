"""Successful dumps: manifest contract, checksums, and real restores of files and databases."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    INSTANCE_ID,
    Imds,
    RecordingProxy,
    Runner,
    SeededDb,
    db_settings,
    dump_prefix,
    last_line,
    list_keys,
    make_runner,
    mysql_cli,
    pg_cli,
)

pytestmark = pytest.mark.integration


@dataclass
class DumpRun:
    db: SeededDb
    compression: str
    env: dict[str, str]
    result: subprocess.CompletedProcess[str]
    runner: Runner
    manifest_key: str
    manifest: dict[str, Any]
    blobs: dict[str, bytes]  # key -> stored (compressed) bytes


def decompress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.decompress(data)
    out = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True)
    return out.stdout


@pytest.fixture(
    scope="module",
    params=[("mysql", "gzip"), ("mysql", "zstd"), ("postgres", "gzip"), ("postgres", "zstd")],
    ids="-".join,
)
def dump_run(
    request: pytest.FixtureRequest,
    *,
    tmp_path_factory: pytest.TempPathFactory,
    aws_env: dict[str, str],
    imds: Imds,
    bucket: str,
    kms_key_arn: str,
    source_tree: list[Path],
    s3: Any,
) -> DumpRun:
    engine, compression = request.param
    db: SeededDb = request.getfixturevalue("mysql_db" if engine == "mysql" else "pg_db")
    runner = make_runner(
        tmp_path_factory.mktemp("run"),
        aws_env=aws_env,
        imds=imds,
        bucket=bucket,
        kms_key_arn=kms_key_arn,
        source_tree=source_tree,
    )
    env = runner.env(**db_settings(db), SB_COMPRESSION=compression)
    result = runner.run(env)
    assert result.returncode == 0, result.stdout + result.stderr
    line = last_line(result.stdout)
    m = re.fullmatch(rf"schoolbackup-dump: OK s3://{bucket}/(\S+)", line)
    assert m, line
    manifest_key = m.group(1)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    blobs = {o["key"]: s3.get_object(Bucket=bucket, Key=o["key"])["Body"].read() for o in manifest["objects"]}
    return DumpRun(db, compression, env, result, runner, manifest_key, manifest, blobs)


def test_manifest_follows_the_contract_and_matches_every_stored_object(
    dump_run: DumpRun, s3: Any, bucket: str
) -> None:
    env, manifest = dump_run.env, dump_run.manifest
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    ext = "gz" if dump_run.compression == "gzip" else "zst"
    assert dump_run.manifest_key == prefix + "manifest.json"
    assert list(manifest) == ["version", "source", "started_at", "finished_at", "status", "objects"]
    assert manifest["version"] == 1
    assert manifest["source"] == INSTANCE_ID
    assert manifest["status"] == "ok"
    for stamp in ("started_at", "finished_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest[stamp])
    assert manifest["started_at"] <= manifest["finished_at"]
    # the readers (verify, restore_test) accept it
    contract = pytest.importorskip("lambdas.common.manifest")
    parsed = contract.parse_manifest(json.dumps(manifest), folder=prefix)
    assert parsed.ok
    assert manifest["objects"] == [
        {
            "key": f"{prefix}files.tar.{ext}",
            "kind": "files",
            "bytes": manifest["objects"][0]["bytes"],
            "sha256": manifest["objects"][0]["sha256"],
        },
        {
            "key": f"{prefix}db-{dump_run.db.name}.sql.{ext}",
            "kind": "db",
            "engine": dump_run.db.engine,
            "bytes": manifest["objects"][1]["bytes"],
            "sha256": manifest["objects"][1]["sha256"],
        },
    ]
    for obj in manifest["objects"]:
        data = dump_run.blobs[obj["key"]]
        assert obj["bytes"] == len(data) > 0
        assert obj["sha256"] == hashlib.sha256(data).hexdigest()
    # the three objects and this run's attempt claim, nothing else; SSE-KMS with the bucket key; no tags
    assert sorted(list_keys(s3, bucket, prefix)) == sorted(
        [o["key"] for o in manifest["objects"]] + [dump_run.manifest_key, prefix + "attempt-1.json"]
    )
    for key in list_keys(s3, bucket, prefix):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == env["SB_KMS_KEY_ID"]
        assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == []
        # the schoolbackup tags travel as user metadata (tags would need s3:PutObjectTagging)
        assert head["Metadata"] == {
            "managedby": "schoolbackup",
            "backupjob": "dump-daily",
            "backupsource": manifest["source"],
        }
    assert dump_run.runner.leftovers() == []


def test_only_imdsv2_requests_were_made(dump_run: DumpRun, imds: Imds) -> None:
    assert imds.requests, "the script must ask IMDS for the instance id"
    assert all(had_token for _, _, had_token in imds.requests), imds.requests
    assert ("PUT", "/latest/api/token", True) in imds.requests


def test_restore_files_one_file_matches_the_original(
    dump_run: DumpRun, source_tree: list[Path], tmp_path: Path
) -> None:
    files_obj = dump_run.manifest["objects"][0]
    tar_bytes = decompress(dump_run.blobs[files_obj["key"]], dump_run.compression)
    original = source_tree[1] / "html" / "bilder" / "schulhaus ä.jpg"
    member = str(original).lstrip("/")
    subprocess.run(["tar", "-xf", "-", "-C", str(tmp_path), member], input=tar_bytes, check=True)
    restored = tmp_path / member
    assert (
        hashlib.sha256(restored.read_bytes()).hexdigest() == hashlib.sha256(original.read_bytes()).hexdigest()
    )
    listing = subprocess.run(
        ["tar", "-tf", "-"], input=tar_bytes, capture_output=True, check=True
    ).stdout.decode()
    for root in source_tree:
        for path in root.rglob("*"):
            suffix = "/" if path.is_dir() else ""
            assert str(path).lstrip("/") + suffix in listing.splitlines(), path


def _mysql_fingerprint(db: str, tables: list[str]) -> dict[str, tuple[str, str]]:
    out = {}
    for t in tables:
        count = mysql_cli(f"SELECT COUNT(*) FROM `{t}`", db=db)  # noqa: S608 - our own table names.strip()
        checksum = mysql_cli(f"CHECKSUM TABLE `{t}` EXTENDED", db=db).split("\t")[1].strip()
        out[t] = (count, checksum)
    return out


def _pg_fingerprint(db: str, tables: list[str]) -> dict[str, tuple[str, str]]:
    out = {}
    for t in tables:
        row = pg_cli(
            f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x",  # noqa: S608
            db=db,
        ).strip()
        count, checksum = row.split("|")
        out[t] = (count, checksum)
    return out


def test_restore_database_into_a_fresh_one_gives_identical_tables(dump_run: DumpRun) -> None:
    db = dump_run.db
    db_obj = dump_run.manifest["objects"][1]
    sql = decompress(dump_run.blobs[db_obj["key"]], dump_run.compression)
    fresh = f"sb_restore_{secrets.token_hex(4)}"
    if db.engine == "mysql":
        assert sql.rstrip().splitlines()[-1].startswith(b"-- Dump completed")
        mysql_cli(f"CREATE DATABASE {fresh} CHARACTER SET utf8mb4")
        try:
            mysql_cli("", db=fresh, stdin=sql)
            assert _mysql_fingerprint(fresh, db.tables) == _mysql_fingerprint(db.name, db.tables)
            assert int(_mysql_fingerprint(fresh, ["photos"])["photos"][0]) == 40
            names = mysql_cli("SELECT name FROM pupils WHERE id IN (2, 6) ORDER BY id", db=fresh).splitlines()
            assert names == ["Łukasz Żółć #2", "emoji 😀🏫 #6"]
            # routines, events and triggers came along
            assert mysql_cli(f"SHOW PROCEDURE STATUS WHERE Db = '{fresh}'").count("average_grade") == 1
            assert "cleanup_audit" in mysql_cli("SHOW EVENTS", db=fresh)
            assert "grades_audit" in mysql_cli("SHOW TRIGGERS", db=fresh)
        finally:
            mysql_cli(f"DROP DATABASE IF EXISTS {fresh}")
    else:
        # pg_dump >= 15.14 appends "\\unrestrict <key>" after the completion line
        tail = sql.rstrip().splitlines()[-5:]
        assert b"-- PostgreSQL database dump complete" in tail, tail
        pg_cli(f"CREATE DATABASE {fresh} ENCODING 'UTF8' TEMPLATE template0")
        try:
            pg_cli("", db=fresh, stdin=sql)
            assert _pg_fingerprint(fresh, db.tables) == _pg_fingerprint(db.name, db.tables)
            assert int(_pg_fingerprint(fresh, ["photos"])["photos"][0]) == 40
            names = pg_cli("SELECT name FROM pupils WHERE id IN (2, 6) ORDER BY id", db=fresh).splitlines()
            assert names == ["Łukasz Żółć #2", "emoji 😀🏫 #6"]
            assert pg_cli("SELECT count(*) FROM grade_avg", db=fresh).strip() == "300"
        finally:
            pg_cli(f"DROP DATABASE IF EXISTS {fresh} WITH (FORCE)")


def test_engine_none_stores_files_only(runner: Runner, s3: Any, bucket: str) -> None:
    env = runner.env(SB_DB_ENGINE="none", SB_COMPRESSION="zstd")
    result = runner.run(env)
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    assert last_line(result.stdout) == f"schoolbackup-dump: OK s3://{bucket}/{prefix}manifest.json"
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    assert [(o["key"], o["kind"]) for o in manifest["objects"]] == [(prefix + "files.tar.zst", "files")]
    assert runner.leftovers() == []


def test_rerun_of_a_finished_slot_says_so_and_uploads_nothing(
    runner: Runner, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    env = runner.env(SB_DB_ENGINE="none", SB_PREFIX="dumps")
    first = runner.run(env)
    assert first.returncode == 0, first.stdout + first.stderr
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    before = {
        v["Key"]: v["VersionId"] for v in s3.list_object_versions(Bucket=bucket, Prefix=prefix)["Versions"]
    }
    sent_before = len(proxy.requests)
    second = runner.run(env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert last_line(first.stdout) == last_line(second.stdout)
    assert "this slot is complete already" in second.stdout
    assert sorted(list_keys(s3, bucket, prefix)) == [
        prefix + "attempt-1.json",
        prefix + "files.tar.gz",
        prefix + "manifest.json",
    ]
    after = {
        v["Key"]: v["VersionId"] for v in s3.list_object_versions(Bucket=bucket, Prefix=prefix)["Versions"]
    }
    assert after == before, "nothing was written again"
    s3_sent = [r for r in proxy.requests[sent_before:] if r.service == "s3"]
    assert [(r.method, r.target.split("?")[0]) for r in s3_sent] == [("GET", f"/{bucket}/")], s3_sent


def test_without_keys_in_the_environment_the_instance_profile_is_used(
    runner: Runner, s3: Any, bucket: str, imds: Imds, proxy: RecordingProxy
) -> None:
    """On the server there are no keys in the environment: the S3 client asks IMDSv2 for the role's."""
    env = runner.env()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name)
    asked = len(imds.requests)
    sent_before = len(proxy.requests)
    result = runner.run(env)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = imds.requests[asked:]
    assert ("GET", "/latest/meta-data/iam/security-credentials/school-web-server-role", True) in seen
    assert all(had_token for _, _, had_token in seen), "IMDSv2 only"
    tokens = {r.headers.get("x-amz-security-token") for r in proxy.requests[sent_before:]}
    assert tokens == {"instance-profile-token"}, "every S3 request carries the role's session token"

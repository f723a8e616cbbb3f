"""Failures: each one exits non-zero, writes no manifest, leaves no temp files and names its step."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    RecordingProxy,
    Runner,
    SeededDb,
    assert_failed_cleanly,
    db_settings,
    dump_prefix,
    free_port,
    last_line,
    list_keys,
    refuse,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"SB_BUCKET": ""}, "SB_BUCKET"),
        ({"SB_DB_ENGINE": ""}, "SB_DB_ENGINE"),
        ({"SB_DB_ENGINE": "oracle"}, "SB_DB_ENGINE"),
        ({"SB_DB_ENGINE": "mysql", "SB_DB_SECRET_ARN": ""}, "SB_DB_SECRET_ARN"),
        (
            {
                "SB_DB_ENGINE": "none",
                "SB_DB_SECRET_ARN": "arn:aws:secretsmanager:eu-central-2:123456789012:secret:x",
            },
            "SB_DB_SECRET_ARN",
        ),
        ({"SB_COMPRESSION": "bzip2"}, "SB_COMPRESSION"),
        ({"SB_KMS_KEY_ID": "alias/aws/s3"}, "SB_KMS_KEY_ID"),
        ({"SB_SCHEDULED_TIME": "2026-11-27 01:00"}, "SB_SCHEDULED_TIME"),
        ({"SB_SCHEDULED_TIME": "2026-02-30T01:00:00Z"}, "SB_SCHEDULED_TIME"),
        ({"SB_PATHS": "var/www"}, "SB_PATHS"),
        (
            {
                "SB_DB_ENGINE": "mysql",
                "SB_DB_SECRET_ARN": "arn:aws:secretsmanager:eu-central-2:123456789012:secret:x",
                "SB_DB_PORT": "99999",
            },
            "SB_DB_PORT",
        ),
    ],
)
def test_invalid_setting_fails_naming_the_variable(
    runner: Runner, s3: Any, bucket: str, settings: dict[str, str], named: str
) -> None:
    env = runner.env(**settings)
    result = runner.run(env)
    line = assert_failed_cleanly(result, runner, s3, bucket, env=env, step="settings")
    assert named in line


def test_database_down_fails_at_db_before_any_upload(
    runner: Runner, mysql_db: SeededDb, s3: Any, bucket: str
) -> None:
    env = runner.env(**db_settings(mysql_db, SB_DB_PORT=str(free_port())))
    result = runner.run(env)
    line = assert_failed_cleanly(result, runner, s3, bucket, env=env, step="db")
    assert "cannot connect" in line
    assert list_keys(s3, bucket, dump_prefix(env["SB_SCHEDULED_TIME"])) == [], "nothing uploaded"


@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_wrong_password_fails_at_db(
    request: pytest.FixtureRequest, *, runner: Runner, secretsmanager: Any, s3: Any, bucket: str, engine: str
) -> None:
    # PostgreSQL: the private cluster with scram-sha-256, since the local server may trust 127.0.0.1.
    db: SeededDb = request.getfixturevalue("mysql_db" if engine == "mysql" else "pg_password_db")
    real = json.loads(secretsmanager.get_secret_value(SecretId=db.secret_arn)["SecretString"])
    wrong = secretsmanager.create_secret(
        Name=f"schoolbackup/it/wrong-{db.name}",
        SecretString=json.dumps({**real, "password": db.password + "-wrong"}),
    )["ARN"]
    env = runner.env(**db_settings(db, SB_DB_SECRET_ARN=wrong))
    result = runner.run(env)
    line = assert_failed_cleanly(result, runner, s3, bucket, env=env, step="db")
    assert f":{real['port']}: " in line, "the failure names the server that refused the password"
    # libpq's last line after a refused password is its hint about the passfile password it sent
    # (the "password authentication failed" line before it is not the one the script reports).
    refused = "Access denied" if engine == "mysql" else "password authentication failed"
    assert refused in line, line
    assert db.password not in result.stdout + result.stderr


def test_missing_secret_fails_at_secret(runner: Runner, mysql_db: SeededDb, s3: Any, bucket: str) -> None:
    missing = mysql_db.secret_arn.rsplit(":", 1)[0] + ":schoolbackup/it/does-not-exist-AbCdEf"
    env = runner.env(**db_settings(mysql_db, SB_DB_SECRET_ARN=missing))
    line = assert_failed_cleanly(runner.run(env), runner, s3, bucket, env=env, step="secret")
    assert "ResourceNotFound" in line or "can't find" in line.lower() or "not found" in line.lower(), line


def test_secret_without_password_fails_at_secret(
    runner: Runner, mysql_db: SeededDb, secretsmanager: Any, s3: Any, bucket: str
) -> None:
    arn = secretsmanager.create_secret(
        Name=f"schoolbackup/it/nopw-{mysql_db.name}", SecretString=json.dumps({"username": mysql_db.user})
    )["ARN"]
    env = runner.env(**db_settings(mysql_db, SB_DB_SECRET_ARN=arn))
    line = assert_failed_cleanly(runner.run(env), runner, s3, bucket, env=env, step="secret")
    assert 'no "password"' in line


def test_missing_configured_path_fails_at_files_before_any_upload(
    runner: Runner, mysql_db: SeededDb, source_tree: list[Path], s3: Any, bucket: str
) -> None:
    missing = source_tree[0].parent / "does-not-exist"
    env = runner.env(**db_settings(mysql_db), SB_PATHS=f"{source_tree[0]} {missing}")
    line = assert_failed_cleanly(runner.run(env), runner, s3, bucket, env=env, step="files")
    assert str(missing) in line
    assert list_keys(s3, bucket, dump_prefix(env["SB_SCHEDULED_TIME"])) == [], "nothing uploaded"


@pytest.mark.iam_denied("s3:ListBucket")  # in AWS the role may not even look into another bucket
def test_a_wrong_bucket_fails_at_slot_before_anything_is_read_or_sent(
    runner: Runner, mysql_db: SeededDb, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    env = runner.env(**db_settings(mysql_db), SB_BUCKET="schoolbackup-it-no-such-bucket")
    sent_before = len(proxy.requests)
    line = assert_failed_cleanly(runner.run(env), runner, s3, bucket, env=env, step="slot")
    assert "NoSuchBucket" in line, line
    assert [r.method for r in proxy.requests[sent_before:]] == ["GET"], "only the slot check was sent"


def test_s3_refusing_every_part_stops_the_stream_at_once_and_aborts_the_upload(
    runner: Runner, mysql_big_db: SeededDb, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    proxy.faults.append(refuse("PUT", "partNumber=", 403, "AccessDenied", "Access Denied"))
    env = runner.env(**db_settings(mysql_big_db))
    sent_before = len(proxy.requests)
    try:
        line = assert_failed_cleanly(runner.run(env), runner, s3, bucket, env=env, step="upload")
    finally:
        proxy.faults.clear()
    assert "403 AccessDenied: Access Denied" in line, line
    sent = proxy.requests[sent_before:]
    parts = [r for r in sent if "partNumber=" in r.target]
    aborts = [r for r in sent if r.method == "DELETE" and "uploadId=" in r.target]
    # two upload threads: the stream stops after the first refusals, not after the whole database
    assert 1 <= len(parts) <= 3, [r.target for r in parts]
    assert len(aborts) == 1, "the failed multipart upload is aborted"
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    assert s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", []) == []


def test_imds_unreachable_fails_at_imds(runner: Runner, s3: Any, bucket: str) -> None:
    env = runner.env(SB_IMDS_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    assert_failed_cleanly(runner.run(env), runner, s3, bucket, env=env, step="imds")


def _wait_for_process(*needles: str, timeout: float = 30.0) -> int:
    """PID of the first process whose command line contains every needle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = (
                    Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            if all(n in cmdline for n in needles) and int(pid) != os.getpid():
                return int(pid)
        time.sleep(0.02)
    raise AssertionError(f"no process with {needles!r} appeared")


def _running(needle: str) -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if needle.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(int(pid))
            except OSError:
                pass
    return pids


def test_sigterm_mid_stream_fails_at_db_and_leaves_nothing_behind(
    runner: Runner, mysql_big_db: SeededDb, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    env = runner.env(**db_settings(mysql_big_db))
    sent_before = len(proxy.requests)
    # S3 answers the start of the upload slowly: the signal arrives while the client waits for the
    # upload id, the hardest moment to abort it (the id is not known yet).
    proxy.faults.append(lambda r: time.sleep(1.5) if r.method == "POST" and "uploads" in r.target else None)
    proc = runner.popen(env)
    _wait_for_process("mariadb-dump --defaults-file=/dev/fd/", mysql_big_db.name)  # the DB stream runs
    deadline = time.monotonic() + 30  # ... and its multipart upload is being started
    try:
        while not [r for r in proxy.requests[sent_before:] if r.method == "POST" and "uploads" in r.target]:
            assert time.monotonic() < deadline, "no multipart upload started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
    finally:
        proxy.faults.clear()
    signalled = time.monotonic()
    out, err = proc.communicate(timeout=30)
    print(f"stopped {time.monotonic() - signalled:.2f}s after SIGTERM")
    assert time.monotonic() - signalled < 10, "SIGTERM must stop the run promptly, not after the dump"
    line = assert_failed_cleanly((proc.returncode, out, err), runner, s3, bucket, env=env, step="db")
    assert proc.returncode == 143
    assert "terminated by SIGTERM" in line
    assert _running(str(runner.tmpdir)) == [], "the whole pipeline must be stopped"
    aborted = [r for r in proxy.requests[sent_before:] if r.method == "DELETE" and "uploadId=" in r.target]
    assert aborted, "the stopped multipart upload is aborted"
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    assert s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", []) == []


def test_dump_dying_mid_stream_fails_even_though_the_upload_succeeded(
    runner: Runner, mysql_big_db: SeededDb, s3: Any, bucket: str
) -> None:
    env = runner.env(**db_settings(mysql_big_db))
    proc = runner.popen(env)
    dumper = _wait_for_process("mariadb-dump --defaults-file=/dev/fd/", mysql_big_db.name)
    time.sleep(0.3)
    os.kill(dumper, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    line = assert_failed_cleanly((proc.returncode, out, err), runner, s3, bucket, env=env, step="db")
    assert "exited 137" in line
    # the truncated stream did reach S3 (upload "succeeded"), but without a manifest it is a failed dump
    keys = list_keys(s3, bucket, dump_prefix(env["SB_SCHEDULED_TIME"]))
    assert any(k.endswith(f"db-{mysql_big_db.name}.sql.gz") for k in keys), keys


def test_a_run_while_another_holds_the_lock_says_so_and_exits_0(runner: Runner, s3: Any, bucket: str) -> None:
    env = runner.env()
    # this process holding the lock plays the other run; the script must not wait for it
    with open(runner.lock_file, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        started = time.monotonic()
        result = runner.run(env)
        assert time.monotonic() - started < 5
        assert result.returncode == 0, "a doubled invocation is not a failure (no false alarm)"
        assert last_line(result.stdout).startswith(
            "schoolbackup-dump: SKIPPED: another schoolbackup-dump run is in progress"
        )
        assert list_keys(s3, bucket, dump_prefix(env["SB_SCHEDULED_TIME"])) == []
    assert last_line(runner.run(env).stdout).startswith("schoolbackup-dump: OK "), (
        "lock released -> runs again"
    )

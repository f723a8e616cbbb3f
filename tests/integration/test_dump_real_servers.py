"""The dump under what real servers and SSM do to it: SIGKILL of the process group, symlinked paths,
missing privileges, MyISAM tables, a hostile ~/.my.cnf, huge dumps, two signals, a full disk,
a doubled invocation, and restores as the RDS master user."""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    SCRIPT,
    RecordingProxy,
    Runner,
    SeededDb,
    _put_secret,
    assert_failed_cleanly,
    db_settings,
    dump_prefix,
    last_line,
    list_keys,
    make_password,
    mysql_cli,
    pg_cli,
    unavailable,
)

pytestmark = pytest.mark.integration


def _cmdlines() -> Iterator[tuple[int, bytes]]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                yield int(entry), Path(f"/proc/{entry}/cmdline").read_bytes()


def _wait_for(*needles: bytes, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, cmdline in _cmdlines():
            if all(n in cmdline for n in needles) and pid != os.getpid():
                return pid
        time.sleep(0.02)
    raise AssertionError(f"no process with {needles!r} appeared")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _files_holding(root: Path, secret: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and secret in path.read_bytes():
                found.append(str(path))
    return found


def _lock_is_free(lock_file: Path) -> bool:
    with open(lock_file, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def test_sigkill_of_the_process_group_stops_everything_and_leaves_no_password_anywhere(
    runner: Runner, mysql_big_db: SeededDb, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    env = runner.env(**db_settings(mysql_big_db))
    core = mysql_big_db.password.split("#")[0].encode()
    sent_before = len(proxy.requests)
    proc = runner.popen(env, own_group=True)
    _wait_for(b"mariadb-dump\0--defaults-file=/dev/fd/", mysql_big_db.name.encode())
    deadline = time.monotonic() + 30  # the upload of the database is under way
    while not [r for r in proxy.requests[sent_before:] if "partNumber=" in r.target]:
        assert time.monotonic() < deadline, "no part was uploaded"
        time.sleep(0.05)

    os.killpg(proc.pid, signal.SIGKILL)  # what the SSM agent does on timeout or cancel
    proc.communicate(timeout=30)

    deadline = time.monotonic() + 10
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(proc.pid), "every process of the run died with the group (no orphaned upload)"
    assert _lock_is_free(runner.lock_file), "the next run is not locked out"
    assert _files_holding(runner.tmpdir, core) == [], "no file of the killed run holds the password"
    assert _files_holding(Path("/dev/shm"), core) == []
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    assert not [k for k in list_keys(s3, bucket, prefix) if k.endswith("manifest.json")]
    assert runner.leftovers(), "the killed run could not clean up (this is what the next run sweeps)"

    again = runner.run(env, timeout=300)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "removed what a killed run left behind" in again.stdout
    assert "attempt 2 of this slot" in again.stdout
    assert runner.leftovers() == []


def test_the_script_stops_itself_at_its_time_limit_and_cleans_up(
    runner: Runner, mysql_big_db: SeededDb, s3: Any, bucket: str
) -> None:
    env = runner.env(**db_settings(mysql_big_db), SB_TIME_LIMIT_SECONDS="3")
    started = time.monotonic()
    line = assert_failed_cleanly(runner.run(env), runner, s3, bucket, env=env, step="db")
    assert time.monotonic() - started < 20
    assert "stopped after its time limit" in line and "dump.timeout_minutes" in line
    assert not [
        pid for pid, cmd in _cmdlines() if mysql_big_db.name.encode() in cmd and b"mariadb-dump" in cmd
    ]


def test_two_signals_in_a_row_still_end_with_the_failed_line(
    runner: Runner, mysql_big_db: SeededDb, s3: Any, bucket: str
) -> None:
    env = runner.env(**db_settings(mysql_big_db))
    proc = runner.popen(env, own_group=True)
    _wait_for(b"mariadb-dump\0--defaults-file=/dev/fd/", mysql_big_db.name.encode())
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    line = assert_failed_cleanly((proc.returncode, out, err), runner, s3, bucket, env=env, step="db")
    assert "terminated by SIGTERM" in line


def test_a_symlinked_path_is_archived_as_the_files_it_points_to(
    runner: Runner, s3: Any, bucket: str, tmp_path: Path
) -> None:
    real = tmp_path / "srv" / "www"
    (real / "html").mkdir(parents=True)
    (real / "html" / "index.php").write_text("<?php echo 'Schulhaus'; ?>\n")
    (tmp_path / "var").mkdir()
    link = tmp_path / "var" / "www"
    link.symlink_to(real)  # /var/www -> /srv/www, as on many servers
    env = runner.env(SB_PATHS=str(link))
    result = runner.run(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{link} is a symlink to {real}" in result.stdout
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    archive = s3.get_object(Bucket=bucket, Key=prefix + "files.tar.gz")["Body"].read()
    listing = subprocess.run(
        ["tar", "-tzvf", "-"], input=archive, capture_output=True, check=True
    ).stdout.decode()
    member = f"{str(link).lstrip('/')}/html/index.php"
    assert member in listing, listing
    extracted = subprocess.run(["tar", "-xzOf", "-", member], input=archive, capture_output=True, check=True)
    assert extracted.stdout == b"<?php echo 'Schulhaus'; ?>\n"


def test_a_file_that_cannot_be_read_is_named_in_the_failure(runner: Runner) -> None:
    """As an unprivileged user (root reads everything): one unreadable file among readable ones. The
    script and its helpers are copied where that user may read them, as on a server."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        unavailable("needs root and runuser to run the script as another user")
    nobody = pwd.getpwnam("nobody")
    root = Path(tempfile.mkdtemp(prefix="sb-it-unreadable-"))
    try:
        root.chmod(0o755)
        bin_dir, tree, work = root / "bin", root / "site", root / "work"
        for d in (bin_dir, tree, work):
            d.mkdir(mode=0o755)
        for helper in ("schoolbackup-dump.sh", "s3put.py", "dbsecret.py"):
            shutil.copy(SCRIPT.with_name(helper), bin_dir / helper)
            (bin_dir / helper).chmod(0o644)
        (tree / "ok.txt").write_text("fine\n")
        (tree / "ok.txt").chmod(0o644)
        (tree / "secret.key").write_text("no\n")
        (tree / "secret.key").chmod(0o000)
        os.chown(work, nobody.pw_uid, nobody.pw_gid)
        env = runner.env(
            SB_PATHS=str(tree),
            SB_TMPDIR=str(work),
            SB_LOCK_FILE=str(work / "lock"),
            PATH="/usr/local/bin:/usr/bin:/bin",  # the system python3, as on the server
        )
        result = subprocess.run(
            [
                "runuser",
                "-u",
                "nobody",
                "--",
                "env",
                "-i",
                *[f"{k}={v}" for k, v in env.items()],
                "bash",
                str(bin_dir / "schoolbackup-dump.sh"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode != 0
        line = last_line(result.stdout)
        assert line.startswith("schoolbackup-dump: FAILED at step files: tar exited 2: "), result.stdout
        assert "secret.key: Cannot open: Permission denied" in line, line
        assert sorted(p.name for p in work.iterdir()) == ["lock"], "nothing else left behind"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mysql_user_without_trigger(mysql_db: SeededDb, secretsmanager: Any) -> Iterator[SeededDb]:
    user, password = f"sb_it_nt_{secrets.token_hex(3)}", make_password()
    pw = password.replace("\\", "\\\\").replace("'", "\\'")
    mysql_cli(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{pw}';"
        f"GRANT SELECT, SHOW VIEW, LOCK TABLES, EVENT ON {mysql_db.name}.* TO '{user}'@'%';"
        f"GRANT SELECT ON mysql.proc TO '{user}'@'%';"
    )
    arn = _put_secret(
        secretsmanager,
        f"schoolbackup/it/{user}",
        {"username": user, "password": password, "host": "127.0.0.1", "port": 3306, "dbname": mysql_db.name},
    )
    yield SeededDb("mysql", mysql_db.name, user, password, arn, mysql_db.tables)
    mysql_cli(f"DROP USER IF EXISTS '{user}'@'%'")


def test_a_dump_user_without_trigger_fails_before_any_upload_naming_the_privilege(
    runner: Runner, mysql_user_without_trigger: SeededDb, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    env = runner.env(**db_settings(mysql_user_without_trigger))
    sent_before = len(proxy.requests)
    line = assert_failed_cleanly(runner.run(env), runner, s3, bucket, env=env, step="db")
    assert f"the dump user {mysql_user_without_trigger.user}@%" in line
    assert "lacks TRIGGER" in line and "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT" in line
    assert not [
        r for r in proxy.requests[sent_before:] if r.service == "s3" and r.method in ("PUT", "POST")
    ], "nothing uploaded"


@pytest.fixture
def mysql_with_myisam(mysql_db: SeededDb, secretsmanager: Any) -> Iterator[SeededDb]:
    mysql_cli(
        "CREATE TABLE counters (id INT PRIMARY KEY, hits INT) ENGINE=MyISAM;"
        "INSERT INTO counters VALUES (1, 42);",
        db=mysql_db.name,
    )
    yield mysql_db
    mysql_cli("DROP TABLE IF EXISTS counters", db=mysql_db.name)


def test_a_myisam_table_is_named_in_a_warning_and_in_the_manifest(
    runner: Runner, mysql_with_myisam: SeededDb, s3: Any, bucket: str
) -> None:
    env = runner.env(**db_settings(mysql_with_myisam))
    result = runner.run(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"warning: table {mysql_with_myisam.name}.counters uses MyISAM" in result.stdout
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    assert manifest["inconsistent_tables"] == ["counters"]
    from lambdas.common.manifest import parse_manifest

    assert parse_manifest(json.dumps(manifest), folder=prefix).inconsistent_tables == ("counters",)
    # lock-tables: every table is read under a lock, so nothing is inconsistent
    locked = runner.env(**db_settings(mysql_with_myisam), SB_DB_CONSISTENCY="lock-tables")
    assert runner.run(locked).returncode == 0
    prefix = dump_prefix(locked["SB_SCHEDULED_TIME"])
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    assert "inconsistent_tables" not in manifest


def test_a_hostile_home_and_environment_do_not_replace_the_secret(
    runner: Runner, mysql_db: SeededDb, pg_db: SeededDb, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".my.cnf").write_text("[client]\nuser=root\npassword=wrong\nhost=10.255.255.1\nport=1\n")
    (home / ".pgpass").write_text("*:*:*:*:wrong\n")
    (home / ".pgpass").chmod(0o600)
    hostile = {
        "HOME": str(home),
        "MYSQL_PWD": "wrong",
        "MYSQL_HOST": "10.255.255.1",
        "PGPASSWORD": "wrong",
        "PGHOST": "10.255.255.1",
        "PGUSER": "postgres",
        "PGPASSFILE": str(home / ".pgpass"),
    }
    for db in (mysql_db, pg_db):
        result = runner.run(runner.env(**db_settings(db), **hostile))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"as {db.user} (password from the secret)" in result.stdout


def test_a_port_with_a_leading_zero_is_read_as_decimal(runner: Runner, pg_db: SeededDb) -> None:
    result = runner.run(runner.env(**db_settings(pg_db, SB_DB_PORT="05432")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "on 127.0.0.1:5432 as" in result.stdout


def test_s3_refusing_parts_ends_the_whole_dump_within_seconds(
    runner: Runner, mysql_big_db: SeededDb, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    refused: list[float] = []

    def deny_parts(request: Any) -> tuple[int, str] | None:
        if request.method == "PUT" and "partNumber=" in request.target:
            refused.append(time.monotonic())
            return 403, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        return None

    proxy.faults.append(deny_parts)
    env = runner.env(**db_settings(mysql_big_db))
    try:
        result = runner.run(env)
        ended = time.monotonic()
    finally:
        proxy.faults.clear()
    assert_failed_cleanly(result, runner, s3, bucket, env=env, step="upload")
    assert refused and ended - refused[0] < 5, (
        f"ended {ended - refused[0]:.1f} s after S3 refused the first part"
    )
    assert not [
        pid for pid, cmd in _cmdlines() if mysql_big_db.name.encode() in cmd and b"mariadb-dump" in cmd
    ]


def test_a_dump_bigger_than_one_upload_fails_before_streaming_naming_the_setting(
    runner: Runner, mysql_big_db: SeededDb, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    mysql_cli("ANALYZE TABLE big", db=mysql_big_db.name)  # the estimate reads InnoDB's table statistics
    env = runner.env(**db_settings(mysql_big_db), SB_MAX_PART_MIB="5", SB_MAX_PARTS="2")  # 10 MiB at most
    sent_before = len(proxy.requests)
    line = assert_failed_cleanly(runner.run(env), runner, s3, bucket, env=env, step="size")
    assert f"the database {mysql_big_db.name} is about " in line
    assert "more than one upload can take with parts of at most 5 MiB (10.0 MiB in 2 parts)" in line
    assert "Raise dump.max_part_mib in cdk.json" in line
    assert not [
        r for r in proxy.requests[sent_before:] if r.service == "s3" and r.method in ("PUT", "POST")
    ], "nothing streamed"


def test_a_stream_that_outgrows_the_estimate_stops_at_the_part_limit_naming_the_setting(
    aws_env: dict[str, str], s3: Any, bucket: str, kms_key_arn: str
) -> None:
    """The estimate can be low (stale table statistics): the upload itself stops at its limit."""
    key = f"dumps/i-0123456789abcdef0/2026/11/27/20261127T{secrets.randbelow(10000):04d}Z/db-school.sql.gz"
    s3put = SCRIPT.with_name("s3put.py")
    command = [
        "python3", str(s3put), "upload", "--bucket", bucket, "--key", key, "--region", "eu-central-2",
        "--sse-kms-key-id", kms_key_arn, "--meta", os.devnull, "--max-part-mib", "5", "--max-parts", "2",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        input=os.urandom(11 * 1024**2),  # 11 MiB > 2 parts of 5 MiB
        env={"PATH": os.environ["PATH"], **aws_env},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert (
        "larger than one upload can take (10485760 bytes in 2 parts of at most 5 MiB)" in done.stderr.decode()
    )
    assert "raise the largest part size (dump.max_part_mib)" in done.stderr.decode()
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=key)
    assert s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", []) == [], "aborted"


@pytest.fixture
def full_tmpdir(tmp_path: Path) -> Iterator[Path]:
    """A tiny tmpfs, filled up: the disk-full case."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs for the disk-full case: {done.stderr.decode().strip()}")
    try:
        with contextlib.suppress(OSError), open(mount / "filler", "wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_temp_disk_says_the_disk_is_full(
    runner: Runner, full_tmpdir: Path, s3: Any, bucket: str
) -> None:
    env = runner.env(SB_TMPDIR=str(full_tmpdir))
    result = runner.run(env)
    assert result.returncode != 0
    line = last_line(result.stdout)
    assert line.startswith("schoolbackup-dump: FAILED at step tmpdir: "), line
    assert "the disk is full" in line, line
    assert sorted(p.name for p in full_tmpdir.iterdir()) == ["filler"], "nothing left in the full dir"


def _sql_portable_expressions() -> list[str]:
    text = SCRIPT.read_text()
    body = text[text.index("sql_portable() {") : text.index("produce_db() {")]
    return re.findall(r"sed -E '([^']+)'", body)


def test_the_sql_filter_drops_the_sandbox_line_only_for_mysql_and_definers_but_never_data() -> None:
    for_mysql, for_mariadb = _sql_portable_expressions()
    sample = (
        "/*M!999999\\- enable the sandbox mode */ \n"
        "-- MariaDB dump\n"
        "/*!50013 DEFINER=`app`@`%` SQL SECURITY DEFINER */\n"
        "CREATE DEFINER=`app`@`%` PROCEDURE p() SELECT 1;\n"
        "INSERT INTO notes VALUES (1,'see DEFINER=`app`@`%` in the docs');\n"
    )
    mysql_out = subprocess.run(
        ["sed", "-E", for_mysql], input=sample, capture_output=True, text=True, check=True
    ).stdout
    mariadb_out = subprocess.run(
        ["sed", "-E", for_mariadb], input=sample, capture_output=True, text=True, check=True
    ).stdout
    assert not mysql_out.startswith("/*M!999999"), "MySQL's client rejects the sandbox line"
    assert mariadb_out.startswith("/*M!999999"), "a MariaDB target keeps its protection"
    for out in (mysql_out, mariadb_out):
        assert "/*!50013 SQL SECURITY DEFINER */" in out and "CREATE PROCEDURE p()" in out
        assert "'see DEFINER=`app`@`%` in the docs'" in out, "data is never changed"


def test_the_dump_restores_as_a_user_without_super_like_the_rds_master_user(
    runner: Runner, mysql_db: SeededDb, s3: Any, bucket: str
) -> None:
    """The seed's trigger, procedure and event belong to root: a restore that kept DEFINER=root@...
    would need SUPER/SET USER, which the RDS master user does not have."""
    env = runner.env(**db_settings(mysql_db))
    assert runner.run(env).returncode == 0
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    sql = gzip.decompress(
        s3.get_object(Bucket=bucket, Key=f"{prefix}db-{mysql_db.name}.sql.gz")["Body"].read()
    )
    assert not [line for line in sql.splitlines() if b"DEFINER=" in line and not line.startswith(b"INSERT ")]
    target, user, password = (
        f"sb_it_rs_{secrets.token_hex(3)}",
        f"sb_it_rs_{secrets.token_hex(3)}",
        "Restore-1x!",
    )
    mysql_cli(
        f"CREATE DATABASE {target}; CREATE USER '{user}'@'%' IDENTIFIED BY '{password}';"
        f"GRANT ALL PRIVILEGES ON {target}.* TO '{user}'@'%';"
    )
    try:
        restore = subprocess.run(
            ["mariadb", "-h", "127.0.0.1", "--protocol=TCP", "-u", user, f"-p{password}", target],
            input=sql,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert restore.returncode == 0, restore.stderr.decode()
        names = mysql_cli(
            f"SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{target}';"  # noqa: S608
            f"SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{target}';"
            f"SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{target}';"
        ).split()
        assert {"grades_audit", "average_grade", "cleanup_audit"} <= set(names)
    finally:
        mysql_cli(f"DROP DATABASE IF EXISTS {target}; DROP USER IF EXISTS '{user}'@'%'")


def test_a_postgres_dump_restores_with_the_psql_that_made_it(
    runner: Runner, pg_db: SeededDb, s3: Any, bucket: str
) -> None:
    env = runner.env(**db_settings(pg_db))
    assert runner.run(env).returncode == 0
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    sql = gzip.decompress(s3.get_object(Bucket=bucket, Key=f"{prefix}db-{pg_db.name}.sql.gz")["Body"].read())
    target = f"sb_it_rs_{secrets.token_hex(3)}"
    pg_cli(f"CREATE DATABASE {target}")
    try:
        pg_cli("", db=target, stdin=sql)
        assert pg_cli("SELECT count(*) FROM pupils", db=target).strip() == "300"
    finally:
        pg_cli(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)")

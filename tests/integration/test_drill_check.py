"""The restore drill's checks on the restored server, run for real.

``lambdas/dump/schoolbackup-drill-check.sh`` against a real dump that the real dump script wrote into
moto (server mode), the local MariaDB/PostgreSQL as "the restored database" (reached as a privileged
user whose secret is in moto's Secrets Manager, like the RDS-managed master secret of the restored
instance), and a local HTTP server as the restored web application.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import secrets
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    BIN_DIR,
    MYSQL,
    PG,
    REGION,
    Imds,
    SeededDb,
    db_settings,
    last_line,
    make_runner,
    mysql_cli,
    pg_cli,
)

pytestmark = pytest.mark.integration
CHECK = Path(__file__).resolve().parents[2] / "lambdas" / "dump" / "schoolbackup-drill-check.sh"
LINE = re.compile(r"^SB-CHECK (app|db|dump) (ok|failed) (\d+) (.*)$")


@dataclass
class App:
    url: str
    status: list[int]  # what the server answers; the test may change it


@pytest.fixture
def app() -> Iterator[App]:
    state = App("", [200])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(state.status[0])
            self.end_headers()
            self.wfile.write(b"school")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


@dataclass
class Dumped:
    db: SeededDb
    folder: str  # dumps/<source>/.../<stamp>/
    master_secret: str


@dataclass
class DumpFixtures:
    """What the real dump script needs (the session's moto, IMDS, bucket, key and files)."""

    values: dict[str, Any]

    def dump(self, db: SeededDb, tmp: Path, secretsmanager: Any, username: str, password: str) -> Dumped:
        """Run the real dump script for db; keep the restored instance's master secret beside it."""
        runner = make_runner(tmp, **self.values)
        result = runner.run(runner.env(**db_settings(db)))
        assert result.returncode == 0, result.stdout + result.stderr
        found = re.fullmatch(
            rf"schoolbackup-dump: OK s3://{self.values['bucket']}/(\S+)manifest\.json",
            last_line(result.stdout),
        )
        assert found, result.stdout
        arn = secretsmanager.create_secret(
            Name=f"rds!db-{secrets.token_hex(4)}",
            SecretString=json.dumps({"username": username, "password": password}),
        )["ARN"]
        return Dumped(db, found.group(1), arn)


@pytest.fixture(scope="module")
def dump_fixtures(
    aws_env: dict[str, str], imds: Imds, bucket: str, kms_key_arn: str, source_tree: list[Path]
) -> DumpFixtures:
    return DumpFixtures(
        {
            "aws_env": aws_env,
            "imds": imds,
            "bucket": bucket,
            "kms_key_arn": kms_key_arn,
            "source_tree": source_tree,
        }
    )


@pytest.fixture(scope="module")
def mysql_dumped(
    mysql_db: SeededDb,
    tmp_path_factory: pytest.TempPathFactory,
    dump_fixtures: DumpFixtures,
    secretsmanager: Any,
) -> Iterator[Dumped]:
    # The restored instance's master user: may create and drop the scratch database.
    user, password = f"sb_master_{secrets.token_hex(3)}", f"Pw{secrets.token_hex(10)}"
    mysql_cli(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; GRANT ALL ON *.* TO '{user}'@'%'")
    yield dump_fixtures.dump(mysql_db, tmp_path_factory.mktemp("drill-dump"), secretsmanager, user, password)
    mysql_cli(f"DROP USER IF EXISTS '{user}'@'%'")


@dataclass
class Checked:
    code: int
    checks: dict[str, tuple[str, str]]  # name -> (ok|failed, detail)
    hosts: str  # the hosts file afterwards
    scratch: str  # the scratch database this run used (sb_drill_check_<the script's pid>)


def run_check(
    dumped: Dumped, app: App, moto_endpoint: str, bucket: str, tmp_path: Path, **overrides: str
) -> Checked:
    db = dumped.db
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    server = MYSQL if db.engine == "mysql" else PG
    env = {
        "PATH": f"{BIN_DIR}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "SB_APP_URL": app.url,
        "SB_APP_WAIT_SECONDS": "2",
        "SB_CHECK_SQL_B64": base64.b64encode(b"SELECT COUNT(*) FROM pupils").decode(),
        "SB_DB_ENGINE": db.engine,
        "SB_DB_NAME": db.name,
        "SB_PROD_DB_HOST": "school-db.abcdefghijkl.eu-central-2.rds.amazonaws.com",
        "SB_DB_HOST": "localhost",
        "SB_DB_PORT": server["port"],
        "SB_DB_SECRET_ARN": dumped.master_secret,
        "SB_BUCKET": bucket,
        "SB_DUMP_FOLDER": dumped.folder,
        "SB_REGION": REGION,
        "SB_HOSTS_FILE": str(hosts),
        **overrides,
    }
    with subprocess.Popen(
        ["bash", str(CHECK)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        stdout, _ = proc.communicate(timeout=300)
    lines = {}
    for line in stdout.splitlines():
        m = LINE.match(line)
        if m:
            lines[m.group(1)] = (m.group(2), m.group(4))
    return Checked(proc.returncode, lines, hosts.read_text(), f"sb_drill_check_{proc.pid}")


def copy_dump(s3: Any, bucket: str, dumped: Dumped, folder: str) -> dict[str, Any]:
    """Copy a dump's objects under another folder; return its manifest with the keys rewritten."""
    manifest: dict[str, Any] = json.loads(
        s3.get_object(Bucket=bucket, Key=f"{dumped.folder}manifest.json")["Body"].read()
    )
    for obj in manifest["objects"]:
        data = s3.get_object(Bucket=bucket, Key=obj["key"])["Body"].read()
        obj["key"] = folder + obj["key"].rsplit("/", 1)[-1]
        s3.put_object(Bucket=bucket, Key=obj["key"], Body=data)
    return manifest


def test_a_good_restore_passes_every_check_and_leaves_no_scratch_database(
    mysql_dumped: Dumped, app: App, moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    run = run_check(mysql_dumped, app, moto_endpoint, bucket, tmp_path)
    assert run.code == 0, run.checks
    assert run.checks["app"][0] == "ok" and "HTTP 200" in run.checks["app"][1]
    assert run.checks["db"] == ("ok", f"{mysql_dumped.db.name} answered 300")
    assert run.checks["dump"][0] == "ok"
    assert f"database dump loaded into {run.scratch} and answered 300" in run.checks["dump"][1]
    # the production DB's name now points at the restored database on the restored server
    assert "school-db.abcdefghijkl.eu-central-2.rds.amazonaws.com" in run.hosts
    assert run.scratch not in mysql_cli("SHOW DATABASES").split()


def test_an_error_page_and_an_empty_answer_fail_their_checks(
    mysql_dumped: Dumped, app: App, moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    app.status[0] = 500
    empty = base64.b64encode(b"SELECT COUNT(*) FROM empty_table").decode()
    run = run_check(mysql_dumped, app, moto_endpoint, bucket, tmp_path, SB_CHECK_SQL_B64=empty)
    assert run.code == 1
    assert run.checks["app"] == ("failed", f"{app.url} answered HTTP 500")
    assert run.checks["db"][0] == "failed" and "answered '0'" in run.checks["db"][1]
    assert run.checks["dump"][0] == "failed" and "the loaded dump answered '0'" in run.checks["dump"][1]


def test_a_dump_whose_bytes_differ_from_its_manifest_fails(
    mysql_dumped: Dumped, app: App, moto_endpoint: str, bucket: str, tmp_path: Path, s3: Any
) -> None:
    folder = "dumps/i-0fedcba9876543210/2031/01/01/20310101T0030Z/"
    manifest = copy_dump(s3, bucket, mysql_dumped, folder)
    manifest["objects"][-1]["sha256"] = "0" * 64
    s3.put_object(Bucket=bucket, Key=f"{folder}manifest.json", Body=json.dumps(manifest).encode())
    run = run_check(mysql_dumped, app, moto_endpoint, bucket, tmp_path, SB_DUMP_FOLDER=folder)
    assert run.code == 1
    assert run.checks["app"][0] == "ok" and run.checks["db"][0] == "ok"
    assert run.checks["dump"][0] == "failed" and "the manifest says " + "0" * 64 in run.checks["dump"][1]
    # the check stopped after the load: its scratch database is dropped all the same
    assert run.scratch not in mysql_cli("SHOW DATABASES").split()


def test_a_dump_that_does_not_load_says_so_not_that_it_does_not_decompress(
    mysql_dumped: Dumped, app: App, moto_endpoint: str, bucket: str, tmp_path: Path, s3: Any
) -> None:
    # Valid gzip, SHA-256 and size as the manifest says, but not SQL: the loader stops at the first
    # line and closes the pipe while gzip still has megabytes to write (gzip then dies of SIGPIPE).
    folder = "dumps/i-0fedcba9876543210/2031/01/02/20310102T0030Z/"
    manifest = copy_dump(s3, bucket, mysql_dumped, folder)
    db_part = next(obj for obj in manifest["objects"] if obj["kind"] == "db")
    body = gzip.compress(b"THIS IS NOT SQL;\n" + secrets.token_hex(4 << 20).encode(), compresslevel=1)
    s3.put_object(Bucket=bucket, Key=db_part["key"], Body=body)
    db_part.update(sha256=hashlib.sha256(body).hexdigest(), bytes=len(body))
    s3.put_object(Bucket=bucket, Key=f"{folder}manifest.json", Body=json.dumps(manifest).encode())
    run = run_check(mysql_dumped, app, moto_endpoint, bucket, tmp_path, SB_DUMP_FOLDER=folder)
    assert run.code == 1
    status, detail = run.checks["dump"]
    assert status == "failed"
    assert f"{db_part['key']} does not load into {run.scratch}" in detail and "ERROR 1064" in detail, detail


def test_without_a_readable_secret_the_database_checks_fail_and_say_why(
    mysql_dumped: Dumped, app: App, moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    missing = mysql_dumped.master_secret + "-gone"
    run = run_check(mysql_dumped, app, moto_endpoint, bucket, tmp_path, SB_DB_SECRET_ARN=missing)
    assert run.code == 1
    assert run.checks["app"][0] == "ok"
    for name in ("db", "dump"):
        assert run.checks[name][0] == "failed"
        assert "cannot read the restored database's secret" in run.checks[name][1]


@pytest.fixture(scope="module")
def pg_dumped(
    pg_db: SeededDb,
    tmp_path_factory: pytest.TempPathFactory,
    dump_fixtures: DumpFixtures,
    secretsmanager: Any,
) -> Dumped:
    # the local server trusts 127.0.0.1: the password is never checked
    tmp = tmp_path_factory.mktemp("drill-dump-pg")
    return dump_fixtures.dump(pg_db, tmp, secretsmanager, "postgres", f"Pw{secrets.token_hex(8)}")


def test_a_good_postgres_restore_passes_every_check(
    pg_dumped: Dumped, app: App, moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    run = run_check(pg_dumped, app, moto_endpoint, bucket, tmp_path, SB_DB_HOST="127.0.0.1")
    assert run.code == 0, run.checks
    assert run.checks["db"] == ("ok", f"{pg_dumped.db.name} answered 300")
    assert f"database dump loaded into {run.scratch} and answered 300" in run.checks["dump"][1]
    assert run.scratch not in pg_cli("SELECT datname FROM pg_database").split()

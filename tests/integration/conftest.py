"""Fixtures for the dump-script integration tests.

Real parts only: moto in server mode (S3, KMS, Secrets Manager) on 127.0.0.1, a tiny IMDSv2
stand-in, the local MariaDB and PostgreSQL servers, a private throw-away PostgreSQL cluster with
password authentication (the local one may trust 127.0.0.1), and the real
`lambdas/dump/schoolbackup-dump.sh` run with subprocess. Without the database servers or binaries (or
moto_server) the tests skip, unless the environment variable CI is set: then they fail, so CI can never
pass by skipping.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import pwd
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from tests.iam.recorder import judge_server_requests
from tests.iam.wire import WireRequest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "lambdas" / "dump" / "schoolbackup-dump.sh"
REGION = "eu-central-2"
INSTANCE_ID = "i-0123456789abcdef0"
MYSQL = {"host": "127.0.0.1", "port": "3306"}
PG = {"host": "127.0.0.1", "port": "5432"}
BIN_DIR = Path(sys.executable).parent  # the venv: moto_server and awscli live here


def unavailable(reason: str) -> None:
    """Skip locally; fail under CI so a missing service can never turn into a green build."""
    if os.environ.get("CI"):
        pytest.fail(f"integration prerequisite missing under CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    moto_server = BIN_DIR / "moto_server"
    if not moto_server.exists():
        unavailable(f"{moto_server} not found (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen(
        [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_for_port(port):
            unavailable("moto_server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# Hop-by-hop headers that a proxy must not pass on.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
Fault = Callable[[WireRequest], "tuple[int, str] | None"]


@dataclass
class RecordingProxy:
    """Sits between the dump script and moto: records every request as AWS would receive it (for the
    IAM evaluator) and can answer chosen requests itself (``faults``: S3 refusing parts, say)."""

    url: str = ""
    requests: list[WireRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    checked: int = 0  # requests before this index have been judged

    def unchecked(self) -> list[WireRequest]:
        new = self.requests[self.checked :]
        self.checked = len(self.requests)
        return new


def refuse(method: str, needle: str, status: int, code: str, message: str) -> Fault:
    """A fault that answers ``method`` requests whose target contains ``needle`` with an S3 error."""
    body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>proxy</RequestId></Error>"

    def fault(request: WireRequest) -> tuple[int, str] | None:
        return (status, body) if request.method == method and needle in request.target else None

    return fault


@pytest.fixture(scope="session")
def proxy(moto_endpoint: str) -> Iterator[RecordingProxy]:
    upstream = urlsplit(moto_endpoint)
    state = RecordingProxy()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _forward(self) -> None:
            body = self._body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            small = body if len(body) < 65536 and "json" in headers.get("content-type", "") else b""
            seen = WireRequest(self.command, self.path, headers, small)
            with lock:
                state.requests.append(seen)
            for fault in state.faults:
                answer = fault(seen)
                if answer is not None:
                    self._reply(answer[0], [("Content-Type", "application/xml")], answer[1].encode())
                    return
            conn = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=120)
            try:
                sent = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                sent["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=sent)
                response = conn.getresponse()
                self._reply(response.status, response.getheaders(), response.read())
            finally:
                conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def server_authorization(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, every AWS request the dump script sent since the last check (the test's, and
    those of module fixtures it used) must be Allowed for the web server's role by the synthesized
    policies (tests/iam). ``@pytest.mark.iam_denied("s3:ListBucket")`` names actions the test expects
    AWS to deny (at least one such request must then really be denied)."""
    yield
    if "proxy" not in request.fixturenames:
        return
    state: RecordingProxy = request.getfixturevalue("proxy")
    sent = state.unchecked()
    if not sent:
        return
    verdicts, problems = judge_server_requests(
        sent, bucket=request.getfixturevalue("bucket"), kms_key=request.getfixturevalue("kms_key_arn")
    )
    marker = request.node.get_closest_marker("iam_denied")
    expected = set(marker.args) if marker else set()
    denied = [v for v in verdicts if not v.allowed]
    lines = problems + [v.explain() for v in denied if v.request.action not in expected or v.problems]
    if expected and not any(v.request.action in expected and not v.problems for v in denied):
        lines.append(f"expected IAM to deny {sorted(expected)}, but every such request was allowed")
    if lines:
        pytest.fail(
            f"{len(lines)} request(s) of the dump script would not be allowed for the server's role:\n  "
            + "\n  ".join(lines),
            pytrace=False,
        )


@pytest.fixture(scope="session")
def aws_env(moto_endpoint: str, proxy: RecordingProxy) -> dict[str, str]:
    """Environment for the script: fake credentials, and moto behind the recording proxy."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": proxy.url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }


@pytest.fixture(scope="session")
def aws(aws_env: dict[str, str]) -> Any:
    """A boto3 session talking to moto."""
    return boto3.session.Session(
        aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )


@pytest.fixture(scope="session")
def s3(aws: Any, moto_endpoint: str) -> Any:
    return aws.client("s3", endpoint_url=moto_endpoint)


@pytest.fixture(scope="session")
def secretsmanager(aws: Any, moto_endpoint: str) -> Any:
    return aws.client("secretsmanager", endpoint_url=moto_endpoint)


@pytest.fixture(scope="session")
def kms_key_arn(aws: Any, moto_endpoint: str) -> str:
    kms = aws.client("kms", endpoint_url=moto_endpoint)
    arn: str = kms.create_key(Description="schoolbackup test bucket key")["KeyMetadata"]["Arn"]
    return arn


@pytest.fixture(scope="session")
def bucket(s3: Any, kms_key_arn: str) -> str:
    """Like the real backup bucket: versioned, Object Lock with a default retention, SSE-KMS by default."""
    name = f"schoolbackup-it-{secrets.token_hex(4)}"
    s3.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}, ObjectLockEnabledForBucket=True
    )
    s3.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": kms_key_arn,
                    }
                }
            ]
        },
    )
    return name


@dataclass
class Imds:
    url: str
    token: str
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # (method, path, had token)


@pytest.fixture(scope="session")
def imds() -> Iterator[Imds]:
    """IMDSv2 only: PUT /latest/api/token, then GETs must carry the token (no IMDSv1 answers)."""
    state = Imds(url="", token=secrets.token_urlsafe(24))
    creds = "/latest/meta-data/iam/security-credentials/"
    meta = {
        "/latest/meta-data/instance-id": INSTANCE_ID,
        "/latest/meta-data/placement/region": REGION,
        # the instance profile (the web server's role), as the dump's S3 client reads it without env keys
        creds: "school-web-server-role",
        creds + "school-web-server-role": json.dumps(
            {
                "Code": "Success",
                "AccessKeyId": "testing",
                "SecretAccessKey": "testing",
                "Token": "instance-profile-token",
                "Expiration": "2099-01-01T00:00:00Z",
            }
        ),
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, code: int, body: str = "") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            ok = self.path == "/latest/api/token" and bool(
                self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            )
            state.requests.append(("PUT", self.path, ok))
            self._reply(200, state.token) if ok else self._reply(400)

        def do_GET(self) -> None:
            has_token = self.headers.get("X-aws-ec2-metadata-token") == state.token
            state.requests.append(("GET", self.path, has_token))
            if not has_token:
                self._reply(401)
            elif self.path in meta:
                self._reply(200, meta[self.path])
            else:
                self._reply(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def mysql_cli(sql: str, db: str | None = None, stdin: bytes | None = None) -> str:
    """Run SQL as root on the local MariaDB; return tab-separated output without headers."""
    cmd = [
        "mariadb",
        "-h",
        MYSQL["host"],
        "-P",
        MYSQL["port"],
        "-u",
        "root",
        "--protocol=TCP",
        "--default-character-set=utf8mb4",
        "-N",
        "-B",
    ]
    if sql:
        cmd += ["-e", sql]
    if db:
        cmd.append(db)
    out = subprocess.run(cmd, input=stdin, capture_output=True, check=True, timeout=120)
    return out.stdout.decode()


def pg_cli(sql: str, db: str = "postgres", stdin: bytes | None = None, server: dict[str, str] = PG) -> str:
    """Run SQL as postgres; server is PG or a private cluster (its superuser password in a passfile)."""
    cmd = [
        "psql",
        "-h",
        server["host"],
        "-p",
        server["port"],
        "-U",
        "postgres",
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        db,
    ]
    if sql:
        cmd += ["-c", sql]
    env = {**os.environ, "PGPASSFILE": server["passfile"]} if "passfile" in server else None
    out = subprocess.run(cmd, input=stdin, capture_output=True, check=True, timeout=120, env=env)
    return out.stdout.decode()


def _reachable(cmd: list[str]) -> bool:
    if shutil.which(cmd[0]) is None:
        return False
    try:
        return subprocess.run(cmd, capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def mysql_server() -> None:
    if not _reachable(["mariadb", "-h", MYSQL["host"], "-u", "root", "--protocol=TCP", "-e", "SELECT 1"]):
        unavailable(f"MariaDB not reachable as root on {MYSQL['host']}:{MYSQL['port']}")
    if shutil.which("mariadb-dump") is None and shutil.which("mysqldump") is None:
        unavailable("neither mariadb-dump nor mysqldump installed")


@pytest.fixture(scope="session")
def pg_server() -> None:
    if not _reachable(["psql", "-h", PG["host"], "-U", "postgres", "-X", "-c", "SELECT 1", "postgres"]):
        unavailable(f"PostgreSQL not reachable as postgres on {PG['host']}:{PG['port']}")
    if shutil.which("pg_dump") is None:
        unavailable("pg_dump not installed")


def pg_bindir() -> Path | None:
    """The PostgreSQL server binaries (initdb, pg_ctl): pg_config --bindir, else the newest Debian dir."""
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=False
            )
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.TimeoutExpired):
            pass
    by_version = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(re.sub(r"\D", "", Path(d).parent.name) or 0)
    )
    candidates += [Path(d) for d in reversed(by_version)]
    for d in candidates:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    return None


@pytest.fixture(scope="session")
def pg_password_server() -> Iterator[dict[str, str]]:
    """A private PostgreSQL cluster that really checks passwords (scram-sha-256, local and host).

    initdb refuses to run as root, so as root the cluster belongs to the postgres OS user. It listens
    on 127.0.0.1 only, on a free port, with its socket in its own temp dir; it is stopped and removed
    at session end, also when setting it up failed half-way. Yields a PG-like dict for pg_cli.
    """
    bindir = pg_bindir()
    if bindir is None:
        unavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl): pg_config --bindir, /usr/lib/postgresql/*/bin"
        )
    as_postgres: list[str] = []  # as root: run initdb and pg_ctl as postgres, and give it the files
    owner: tuple[int, int] | None = None
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            unavailable("running as root but runuser (to run initdb as postgres) is not installed")
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root but there is no postgres OS user to own the cluster")
        as_postgres, owner = ["runuser", "-u", "postgres", "--"], (pw.pw_uid, pw.pw_gid)
    root = Path(tempfile.mkdtemp(prefix="sb-it-pg-"))  # 0700
    if owner:
        os.chown(root, *owner)
    data, log = root / "data", root / "server.log"
    password = f"Su{secrets.token_hex(16)}"
    port = str(free_port())
    started = False
    try:
        pwfile = root / "pwfile"
        pwfile.touch(mode=0o600)
        pwfile.write_text(password + "\n")
        if owner:
            os.chown(pwfile, *owner)
        try:
            subprocess.run(
                [
                    *as_postgres,
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                capture_output=True,
                check=True,
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": port,
            "unix_socket_directories": f"'{root}'",
            "password_encryption": "'scram-sha-256'",
            "fsync": "off",
        }
        with (data / "postgresql.conf").open("a") as conf:  # appended: stays owned by postgres
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
        started = True  # from here on pg_ctl stop is worth trying
        start = subprocess.run(
            [
                *as_postgres,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "start",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        if start.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"private PostgreSQL did not start: {start.stdout}{start.stderr}{tail}")
        passfile = root / "pgpass"  # the superuser password for pg_cli; root-owned, 0600
        passfile.touch(mode=0o600)
        passfile.write_text(f"127.0.0.1:{port}:*:postgres:{password}\n")
        yield {"host": "127.0.0.1", "port": port, "passfile": str(passfile)}
    finally:
        if started:
            subprocess.run(
                [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def make_password() -> str:
    # Characters that break naive quoting in option files, pgpass and shells, plus a unique token
    # that the /proc scan can search for.
    return f"Pw{secrets.token_hex(12)}#\"'\\: $x;"


@dataclass
class SeededDb:
    engine: str  # mysql | postgres
    name: str
    user: str
    password: str
    secret_arn: str
    tables: list[str]


UNICODE = [
    "Zoë Müller",
    "Jürg Näf",
    "Łukasz Żółć",
    "山田 太郎",
    "Ελένη",
    'O\'Brien \\ "quoted"',
    "emoji 😀🏫",
]


def _mysql_seed(db: str) -> str:
    rnd = random.Random(42)
    rows = []
    for i in range(1, 301):
        name = UNICODE[i % len(UNICODE)] + f" #{i}"
        note = "NULL" if i % 5 == 0 else f"'line1\\nline2\\ttab {i}'"
        rows.append(f"({i}, '{_sql_escape_mysql(name)}', {note}, '2010-01-{1 + i % 28:02d}')")
    blobs = []
    for i in range(1, 41):
        data = bytes([0, 39, 92, 10, 13, 26, 255]) + rnd.randbytes(rnd.randint(0, 3000))
        blobs.append(f"({i}, {1 + i % 300}, X'{data.hex()}', X'{rnd.randbytes(16).hex()}')")
    return f"""
CREATE TABLE pupils (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, note TEXT, born DATE)
  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE photos (id INT PRIMARY KEY, pupil_id INT NOT NULL, data LONGBLOB, thumb VARBINARY(64),
  FOREIGN KEY (pupil_id) REFERENCES pupils(id)) ENGINE=InnoDB;
CREATE TABLE grades (id INT AUTO_INCREMENT PRIMARY KEY, pupil_id INT NOT NULL, subject VARCHAR(40),
  grade DECIMAL(3,1), FOREIGN KEY (pupil_id) REFERENCES pupils(id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(200)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE empty_table (id INT PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO pupils VALUES {", ".join(rows)};
INSERT INTO photos VALUES {", ".join(blobs)};
CREATE TRIGGER grades_audit AFTER INSERT ON grades FOR EACH ROW
  INSERT INTO audit (msg) VALUES (CONCAT('grade ', NEW.id, ' für ', NEW.subject));
INSERT INTO grades (pupil_id, subject, grade)
  SELECT p.id, s.subject, 1 + (p.id * 7 + LENGTH(s.subject)) % 50 / 10
  FROM pupils p CROSS JOIN (SELECT 'Mathe' AS subject UNION SELECT 'Französisch' UNION SELECT 'Sport') s;
CREATE PROCEDURE average_grade(IN pid INT) SELECT AVG(grade) FROM grades WHERE pupil_id = pid;
CREATE EVENT cleanup_audit ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit WHERE id < 0;
"""  # noqa: S608 - fixed test data


def _sql_escape_mysql(s: str) -> str:
    return s.replace("\\", "\\\\").replace("'", "\\'")


def _pg_seed() -> str:
    rnd = random.Random(43)
    rows = []
    for i in range(1, 301):
        name = UNICODE[i % len(UNICODE)].replace("'", "''") + f" #{i}"
        note = "NULL" if i % 5 == 0 else f"E'line1\\nline2\\ttab {i}'"
        rows.append(f"({i}, '{name}', {note}, '2010-01-{1 + i % 28:02d}')")
    blobs = []
    for i in range(1, 41):
        data = bytes([0, 39, 92, 10, 13, 26, 255]) + rnd.randbytes(rnd.randint(0, 3000))
        blobs.append(f"({i}, {1 + i % 300}, '\\x{data.hex()}'::bytea)")
    return f"""
CREATE TABLE pupils (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, note TEXT, born DATE);
CREATE TABLE photos (id INT PRIMARY KEY, pupil_id INT NOT NULL REFERENCES pupils(id), data BYTEA);
CREATE TABLE grades (id SERIAL PRIMARY KEY, pupil_id INT NOT NULL REFERENCES pupils(id), subject TEXT,
  grade NUMERIC(3,1), meta JSONB);
CREATE TABLE empty_table (id INT PRIMARY KEY);
INSERT INTO pupils VALUES {", ".join(rows)};
INSERT INTO photos VALUES {", ".join(blobs)};
INSERT INTO grades (pupil_id, subject, grade, meta)
  SELECT p.id, s, 1 + (p.id * 7 + length(s)) % 50 / 10.0, jsonb_build_object('Fach', s, 'n', p.id)
  FROM pupils p CROSS JOIN unnest(ARRAY['Mathe', 'Französisch', 'Sport']) s;
CREATE VIEW grade_avg AS SELECT pupil_id, avg(grade) AS avg FROM grades GROUP BY pupil_id;
"""  # noqa: S608 - fixed test data


def _put_secret(secretsmanager: Any, name: str, value: dict[str, Any]) -> str:
    arn: str = secretsmanager.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
    return arn


def _mysql_fill(name: str, big_mb: int) -> list[str]:
    """Seed the test tables (or one big table); return the table names."""
    tables = ["pupils", "photos", "grades", "audit", "empty_table"]
    if big_mb:
        tables = ["big"]
        mysql_cli(
            "CREATE TABLE big (id BIGINT AUTO_INCREMENT PRIMARY KEY, payload TEXT) ENGINE=InnoDB;"
            "INSERT INTO big (payload) SELECT REPEAT(SHA2(seq, 512), 4) FROM seq_1_to_1000;",
            db=name,
        )
        # ~530 bytes of dump per row; double until the table is big enough.
        rows = 1000
        while rows * 530 < big_mb * 1024 * 1024:
            mysql_cli(
                "INSERT INTO big (payload) SELECT CONCAT(SHA2(CONCAT(id, RAND()), 512), "
                "REPEAT(SHA2(RAND(), 512), 3)) FROM big",
                db=name,
            )
            rows *= 2
    else:
        mysql_cli("", db=name, stdin=_mysql_seed(name).encode())
    return tables


def create_mysql_db(secretsmanager: Any, big_mb: int = 0) -> SeededDb:
    suffix = secrets.token_hex(4)
    name, user, password = f"sb_it_{suffix}", f"sb_it_{suffix}", make_password()
    mysql_cli(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    pw_sql = _sql_escape_mysql(password)
    mysql_cli(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{pw_sql}';"
        f"GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT ON {name}.* TO '{user}'@'%';"
        f"GRANT SELECT ON mysql.proc TO '{user}'@'%';"
    )
    try:
        tables = _mysql_fill(name, big_mb)
    except BaseException:
        drop_mysql_db(SeededDb("mysql", name, user, password, "", []))
        raise
    arn = _put_secret(
        secretsmanager,
        f"schoolbackup/it/{name}",
        {
            "engine": "mysql",
            "username": user,
            "password": password,
            "host": MYSQL["host"],
            "port": int(MYSQL["port"]),
            "dbname": name,
        },
    )
    return SeededDb("mysql", name, user, password, arn, tables)


def drop_mysql_db(db: SeededDb) -> None:
    mysql_cli(f"DROP DATABASE IF EXISTS {db.name}; DROP USER IF EXISTS '{db.user}'@'%'")


def create_pg_db(secretsmanager: Any, server: dict[str, str] = PG) -> SeededDb:
    suffix = secrets.token_hex(4)
    name, user, password = f"sb_it_{suffix}", f"sb_it_{suffix}", make_password()
    pg_cli(f"CREATE ROLE {user} LOGIN PASSWORD '{password.replace(chr(39), chr(39) * 2)}'", server=server)
    try:
        pg_cli(f"CREATE DATABASE {name} OWNER {user} ENCODING 'UTF8' TEMPLATE template0", server=server)
        pg_cli("", db=name, stdin=(f"SET ROLE {user};" + _pg_seed()).encode(), server=server)
    except BaseException:
        drop_pg_db(SeededDb("postgres", name, user, password, "", []), server=server)
        raise
    arn = _put_secret(
        secretsmanager,
        f"schoolbackup/it/{name}",
        {
            "engine": "postgres",
            "username": user,
            "password": password,
            "host": server["host"],
            "port": int(server["port"]),
            "dbname": name,
        },
    )
    return SeededDb("postgres", name, user, password, arn, ["pupils", "photos", "grades", "empty_table"])


def drop_pg_db(db: SeededDb, server: dict[str, str] = PG) -> None:
    pg_cli(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)", server=server)
    pg_cli(f"DROP ROLE IF EXISTS {db.user}", server=server)


@pytest.fixture(scope="session")
def mysql_db(mysql_server: None, secretsmanager: Any) -> Iterator[SeededDb]:
    db = create_mysql_db(secretsmanager)
    yield db
    drop_mysql_db(db)


@pytest.fixture(scope="session")
def mysql_big_db(mysql_server: None, secretsmanager: Any) -> Iterator[SeededDb]:
    """One large-ish table so that a dump runs for a few seconds (kill / /proc tests)."""
    db = create_mysql_db(secretsmanager, big_mb=96)
    yield db
    drop_mysql_db(db)


@pytest.fixture(scope="session")
def pg_db(pg_server: None, secretsmanager: Any) -> Iterator[SeededDb]:
    db = create_pg_db(secretsmanager)
    yield db
    drop_pg_db(db)


@pytest.fixture(scope="session")
def pg_password_db(pg_password_server: dict[str, str], secretsmanager: Any) -> Iterator[SeededDb]:
    """The test role and database in the private password-checking cluster."""
    db = create_pg_db(secretsmanager, server=pg_password_server)
    yield db
    drop_pg_db(db, server=pg_password_server)


@pytest.fixture(scope="session")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two directories standing in for /etc and /var/www."""
    root = tmp_path_factory.mktemp("server")
    etc = root / "etc"
    www = root / "var" / "www"
    (etc / "nginx").mkdir(parents=True)
    (www / "html" / "bilder").mkdir(parents=True)
    (etc / "nginx" / "nginx.conf").write_text("server { listen 80; }\n")
    (etc / "hostname").write_text("schule-web\n")
    (www / "html" / "index.php").write_text("<?php echo 'Grüezi mitenand'; ?>\n", encoding="utf-8")
    (www / "html" / "bilder" / "schulhaus ä.jpg").write_bytes(random.Random(7).randbytes(300_000))
    (www / "html" / "empty.txt").write_bytes(b"")
    return [etc, www]


_used_times: set[str] = set()


def unique_scheduled_time() -> str:
    """A distinct scheduled time per run, so runs never share a dump folder."""
    rnd = random.Random()
    while True:
        t = (
            f"20{rnd.randint(30, 89)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:"
            f"{rnd.randint(0, 59):02d}:00Z"
        )
        if t not in _used_times:
            _used_times.add(t)
            return t


def dump_prefix(scheduled_time: str, prefix: str = "dumps") -> str:
    d, t = scheduled_time.rstrip("Z").split("T")
    y, m, day = d.split("-")
    hh, mm = t.split(":")[:2]
    return f"{prefix}/{INSTANCE_ID}/{y}/{m}/{day}/{y}{m}{day}T{hh}{mm}Z/"


@dataclass
class Runner:
    """Builds the script environment for one test; tmp dir and lock file are private to the test."""

    base_env: dict[str, str]
    tmpdir: Path
    lock_file: Path

    def env(self, **settings: str) -> dict[str, str]:
        env = dict(self.base_env)
        env["SB_SCHEDULED_TIME"] = unique_scheduled_time()
        env["SB_TMPDIR"] = str(self.tmpdir)
        env["SB_LOCK_FILE"] = str(self.lock_file)
        env.update(settings)
        return {k: v for k, v in env.items() if v is not None}

    def run(self, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def popen(self, env: dict[str, str], *, own_group: bool = False) -> subprocess.Popen[str]:
        """``own_group``: the script leads its own process group, as the SSM agent starts it."""
        return subprocess.Popen(
            ["bash", str(SCRIPT)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=own_group,
        )

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.tmpdir.iterdir())


def make_runner(
    tmp: Path, *, aws_env: dict[str, str], imds: Imds, bucket: str, kms_key_arn: str, source_tree: list[Path]
) -> Runner:
    tmpdir = tmp / "sbtmp"
    tmpdir.mkdir()
    base = {
        "PATH": f"{BIN_DIR}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "LANG": "C.UTF-8",
        **aws_env,
        "SB_BUCKET": bucket,
        "SB_KMS_KEY_ID": kms_key_arn,
        "SB_IMDS_ENDPOINT": imds.url,
        "SB_PATHS": ",".join(str(p) for p in source_tree),
        "SB_COMPRESSION": "gzip",
        "SB_DB_ENGINE": "none",
    }
    return Runner(base, tmpdir, tmp / "schoolbackup-dump.lock")


@pytest.fixture
def runner(
    tmp_path: Path,
    *,
    aws_env: dict[str, str],
    imds: Imds,
    bucket: str,
    kms_key_arn: str,
    source_tree: list[Path],
) -> Runner:
    return make_runner(
        tmp_path, aws_env=aws_env, imds=imds, bucket=bucket, kms_key_arn=kms_key_arn, source_tree=source_tree
    )


def db_settings(db: SeededDb, **overrides: str) -> dict[str, str]:
    """Settings for a DB run; host/port/name come from the secret unless overridden."""
    return {"SB_DB_ENGINE": db.engine, "SB_DB_SECRET_ARN": db.secret_arn, **overrides}


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def assert_failed_cleanly(
    result: subprocess.CompletedProcess[str] | tuple[int, str, str],
    runner: Runner,
    s3: Any,
    bucket: str,
    *,
    env: dict[str, str],
    step: str,
) -> str:
    """Non-zero exit, the last line names the step, no manifest, nothing left in the temp dir."""
    if isinstance(result, tuple):
        rc, out, err = result
    else:
        rc, out, err = result.returncode, result.stdout, result.stderr
    assert rc != 0, out + err
    line = last_line(out)
    assert line.startswith(f"schoolbackup-dump: FAILED at step {step}: "), out + err
    assert line in err, "the failure line is also written to stderr"
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", env["SB_SCHEDULED_TIME"]):  # else: no folder at all
        prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
        assert not [k for k in list_keys(s3, bucket, prefix) if k.endswith("manifest.json")]
    assert runner.leftovers() == [], "temp dir must be empty after a failed run"
    return line

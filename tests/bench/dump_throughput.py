"""Throughput and temporary disk use of the streaming dump script, side by side in one run.

Run: ``python tests/bench/dump_throughput.py [--size-mb 500]`` (needs the local MariaDB as root on
127.0.0.1:3306 and the dev venv's moto_server). It generates a MariaDB database of at least
``--size-mb`` of random-ish hex text server-side (INSERT ... SELECT doubling, so gzip has real work),
then measures, each once after one warm-up dump:

  (0)  ``mariadb-dump ... > /dev/null``                      the floor: nothing is faster than the dump
  (1g) ``lambdas/dump/schoolbackup-dump.sh``, SB_COMPRESSION=gzip (gzip -1), to S3 (moto server)
  (1z) the same with SB_COMPRESSION=zstd (zstd -3 -T0)
  (2)  the original cron approach: dump to a file, ``gzip`` it (default level), ``aws s3 cp`` the file

and prints the absolute times, the ratios (1)/(0) (target <= 1.5) and (1)/(2) (target <= 0.7), and
the peak temporary disk use of the script (``du`` of its SB_TMPDIR, and the drop in free space of that
filesystem, sampled every 0.1 s). moto keeps uploads in memory; its spill files go to /dev/shm so they
do not count as the script's disk use. The bench database and user are dropped at the end.
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "lambdas" / "dump" / "schoolbackup-dump.sh"
BIN_DIR = Path(sys.executable).parent
REGION = "eu-central-2"
INSTANCE_ID = "i-0be7c400000000000"
TARGET_FLOOR_RATIO = 1.5
TARGET_ORIGINAL_RATIO = 0.7
DUMP_FLAGS = [
    "--single-transaction",
    "--routines",
    "--events",
    "--triggers",
    "--hex-blob",
    "--no-tablespaces",
    "--default-character-set=utf8mb4",
    "--quick",
]


def mysql(sql: str, db: str | None = None) -> str:
    cmd = ["mariadb", "-h", "127.0.0.1", "-u", "root", "--protocol=TCP", "-N", "-B", "-e", sql]
    if db:
        cmd.append(db)
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "TMPDIR": "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()}
    proc = subprocess.Popen(
        [str(BIN_DIR / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def imds_stub() -> Iterator[str]:
    token = secrets.token_hex(8)
    meta = {"/latest/meta-data/instance-id": INSTANCE_ID, "/latest/meta-data/placement/region": REGION}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, code: int, body: str = "") -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def do_PUT(self) -> None:
            self._reply(200, token)

        def do_GET(self) -> None:
            ok = self.headers.get("X-aws-ec2-metadata-token") == token and self.path in meta
            self._reply(200, meta[self.path]) if ok else self._reply(401)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def generate_db(name: str, user: str, password: str, size_mb: int) -> tuple[int, float]:
    """Create the bench DB with >= size_mb of table data; return (rows, seconds)."""
    started = time.monotonic()
    mysql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    pw = password.replace("\\", "\\\\").replace("'", "\\'")
    mysql(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{pw}';"
        f"GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT ON {name}.* TO '{user}'@'%';"
        f"GRANT SELECT ON mysql.proc TO '{user}'@'%'"
    )
    # ~1 KiB of hex per row: compressible about 2:1, so the compressor really works.
    payload = "CONCAT(" + ", ".join(f"SHA2(CONCAT(RAND(), {i}), 512)" for i in range(8)) + ")"
    create = "CREATE TABLE pages (id BIGINT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(200), body TEXT)"
    seed = f"INSERT INTO pages (title, body) SELECT CONCAT('Seite ', seq), {payload} FROM seq_1_to_1024"  # noqa: S608
    mysql(f"{create} ENGINE=InnoDB; {seed}", db=name)
    rows = 1024
    while rows * 1100 < size_mb * 1024 * 1024:
        mysql(f"INSERT INTO pages (title, body) SELECT title, {payload} FROM pages", db=name)  # noqa: S608
        rows *= 2
    return rows, time.monotonic() - started


@dataclass
class Sample:
    peak_du: int = 0  # bytes under the watched directory
    peak_drop: int = 0  # bytes of free space lost on its filesystem


def du_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):  # gone meanwhile
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
    return total


@contextmanager
def watch_disk(path: Path) -> Iterator[Sample]:
    sample = Sample()
    st = os.statvfs(path)
    free0 = st.f_bavail * st.f_frsize
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            sample.peak_du = max(sample.peak_du, du_bytes(path))
            st = os.statvfs(path)
            sample.peak_drop = max(sample.peak_drop, free0 - st.f_bavail * st.f_frsize)
            time.sleep(0.1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield sample
    finally:
        stop.set()
        thread.join()


def timed(cmd: list[str], env: dict[str, str] | None = None, stdout_path: str = os.devnull) -> float:
    started = time.monotonic()
    with open(stdout_path, "wb") as out:
        subprocess.run(cmd, env=env, check=True, stdout=out)
    return time.monotonic() - started


def stream_size(cmd: list[str]) -> int:
    total = 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 20):
            total += len(chunk)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return total


def mb(n: float) -> str:
    return f"{n / 1024 / 1024:,.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=500, help="minimum table data to generate (MB)")
    args = parser.parse_args()
    if shutil.which("mariadb-dump") is None:
        print("mariadb-dump not found", file=sys.stderr)
        return 2

    suffix = secrets.token_hex(4)
    name = user = f"sb_bench_{suffix}"
    password = f"Bench{secrets.token_hex(10)}#\"'\\:"
    work = Path(tempfile.mkdtemp(prefix="sb-bench-", dir="/var/tmp"))
    try:
        with moto_server() as endpoint, imds_stub() as imds_url:
            aws_env = {
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            }
            session = boto3.session.Session("bench", "bench", region_name=REGION)
            s3 = session.client("s3", endpoint_url=endpoint)
            bucket = f"sb-bench-{suffix}"
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-2"})
            key_arn = session.client("kms", endpoint_url=endpoint).create_key()["KeyMetadata"]["Arn"]
            secret_arn = session.client("secretsmanager", endpoint_url=endpoint).create_secret(
                Name=f"bench/{name}",
                SecretString=(
                    f'{{"username": "{user}", "password": {json.dumps(password)}, '
                    f'"host": "127.0.0.1", "port": 3306, "dbname": "{name}"}}'
                ),
            )["ARN"]

            print(f"generating >= {args.size_mb} MB in MariaDB database {name} ...", flush=True)
            rows, gen_s = generate_db(name, user, password, args.size_mb)
            size_sql = f"SELECT data_length FROM information_schema.tables WHERE table_schema = '{name}'"  # noqa: S608
            data_bytes = int(mysql(size_sql))
            print(f"  {rows:,} rows, {mb(data_bytes)} InnoDB data, generated in {gen_s:.0f} s", flush=True)

            cnf = work / "bench.cnf"
            cnf.write_text(
                '[client]\nuser={}\npassword="{}"\n'.format(
                    user, password.replace("\\", "\\\\").replace('"', '\\"')
                )
            )
            cnf.chmod(0o600)
            dump = ["mariadb-dump", f"--defaults-extra-file={cnf}", "-h", "127.0.0.1", *DUMP_FLAGS, name]

            # warm-up (buffer pool, page cache) and the dump size
            dump_size = stream_size(dump)
            floor_s = timed(dump)
            print(
                f"(0)  floor: mariadb-dump > /dev/null                {floor_s:7.2f} s  ({mb(dump_size)} of SQL)"
            )

            files_dir = work / "www"
            files_dir.mkdir()
            (files_dir / "index.php").write_text("<?php echo 'Grüezi'; ?>\n")
            results: dict[str, tuple[float, Sample, int]] = {}
            for compression in ("gzip", "zstd"):
                tmpdir = work / f"script-{compression}"
                tmpdir.mkdir()
                env = {
                    "PATH": f"{BIN_DIR}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                    "LANG": "C.UTF-8",
                    **aws_env,
                    "SB_BUCKET": bucket,
                    "SB_KMS_KEY_ID": key_arn,
                    "SB_IMDS_ENDPOINT": imds_url,
                    "SB_PATHS": str(files_dir),
                    "SB_DB_ENGINE": "mysql",
                    "SB_DB_SECRET_ARN": secret_arn,
                    "SB_COMPRESSION": compression,
                    "SB_SCHEDULED_TIME": "2026-11-27T01:00:00Z"
                    if compression == "gzip"
                    else "2026-11-27T01:01:00Z",
                    "SB_TMPDIR": str(tmpdir),
                    "SB_LOCK_FILE": str(work / "bench.lock"),
                }
                with watch_disk(tmpdir) as sample:
                    seconds = timed(["bash", str(SCRIPT)], env=env)
                ext = "gz" if compression == "gzip" else "zst"
                stored = s3.head_object(
                    Bucket=bucket,
                    Key=f"dumps/{INSTANCE_ID}/2026/11/27/{env['SB_SCHEDULED_TIME'][:16].replace('-', '').replace(':', '')}Z/db-{name}.sql.{ext}",
                )["ContentLength"]
                results[compression] = (seconds, sample, stored)
                label = "gzip -1" if compression == "gzip" else "zstd -3 -T0"
                print(
                    f"(1{compression[0]}) script, {label:<12} dump|compress|upload   {seconds:7.2f} s  "
                    f"(db object {mb(stored)}; peak temp dir {sample.peak_du / 1024:,.0f} KiB, "
                    f"peak free-space drop {mb(sample.peak_drop)})"
                )

            orig_dir = work / "original"
            orig_dir.mkdir()
            with watch_disk(orig_dir) as orig_sample:
                t_dump = timed(dump, stdout_path=str(orig_dir / "school.sql"))
                t_gzip = timed(["gzip", str(orig_dir / "school.sql")])
                t_up = timed(
                    [
                        "aws",
                        "s3",
                        "cp",
                        str(orig_dir / "school.sql.gz"),
                        f"s3://{bucket}/original/school.sql.gz",
                        "--only-show-errors",
                    ],
                    env={**os.environ, "PATH": f"{BIN_DIR}:{os.environ.get('PATH', '')}", **aws_env},
                )
            orig_s = t_dump + t_gzip + t_up
            print(
                f"(2)  original: dump to file, gzip -6, aws s3 cp       {orig_s:7.2f} s  "
                f"(dump {t_dump:.1f} + gzip {t_gzip:.1f} + upload {t_up:.1f}; peak disk {mb(orig_sample.peak_du)})"
            )

            print()
            ok = True
            for compression, (seconds, sample, _stored) in results.items():
                r0, r2 = seconds / floor_s, seconds / orig_s
                hit0, hit2 = r0 <= TARGET_FLOOR_RATIO, r2 <= TARGET_ORIGINAL_RATIO
                ok = ok and hit0 and hit2 if compression == "zstd" else ok
                print(
                    f"{compression:5}: (1)/(0) = {r0:.2f} (target <= {TARGET_FLOOR_RATIO}: {'met' if hit0 else 'MISSED'})"
                    f"   (1)/(2) = {r2:.2f} (target <= {TARGET_ORIGINAL_RATIO}: {'met' if hit2 else 'MISSED'})"
                    f"   peak temp {sample.peak_du / 1024:,.0f} KiB = {sample.peak_du / dump_size:.5%} of the dump"
                )
            print("(targets judged on zstd, the throughput choice; gzip -1 shown for comparison)")
            return 0 if ok else 1
    finally:
        subprocess.run(
            [
                "mariadb",
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "--protocol=TCP",
                "-e",
                f"DROP DATABASE IF EXISTS {name}; DROP USER IF EXISTS '{user}'@'%'",
            ],
            check=False,
        )
        shutil.rmtree(work, ignore_errors=True)
        print(f"dropped bench database {name}")


if __name__ == "__main__":
    sys.exit(main())

"""While a (slow) dump runs: the DB password is in no process's argv or environment and in no file,
the credentials reach the tools only through a private FIFO, and a second run started meanwhile
says so and does nothing (without a failure alarm)."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .conftest import Imds, Runner, SeededDb, db_settings, dump_prefix, last_line, list_keys, make_runner

pytestmark = pytest.mark.integration


@dataclass
class Observation:
    scans: int = 0
    leaks: list[str] = field(default_factory=list)  # "<pid> <cmdline|environ>: <command>"
    seen_dumper: bool = False
    seen_uploader: bool = False
    credential_modes: set[tuple[int, int]] = field(default_factory=set)  # (dir mode, FIFO mode)
    files_with_password: set[str] = field(default_factory=set)


def scan_proc(password: bytes, db_name: bytes, tmpdir: Path, obs: Observation) -> None:
    obs.scans += 1
    core = password.split(b"#")[0]  # the password's unique random core, in any quoting/escaping
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if password in cmdline or core in cmdline:
            obs.leaks.append(f"{pid} cmdline: {cmdline[:80]!r}")
        if password in environ or core in environ:
            obs.leaks.append(f"{pid} environ: {cmdline[:80]!r}")
        if b"mariadb-dump\0--defaults-file=/dev/fd/" in cmdline and db_name in cmdline:
            obs.seen_dumper = True
        if b"\0upload\0--bucket\0" in cmdline:  # lambdas/dump/s3put.py streaming a part
            obs.seen_uploader = True
    for work in tmpdir.glob("schoolbackup-dump.*"):
        with contextlib.suppress(OSError):  # not there yet / already gone
            fifo = (work / "db-credentials").stat()
            assert stat.S_ISFIFO(fifo.st_mode), "the credentials are never a regular file"
            obs.credential_modes.add((stat.S_IMODE(work.stat().st_mode), stat.S_IMODE(fifo.st_mode)))
        try:
            paths = list(work.rglob("*"))
        except OSError:  # the run cleaned up while we looked
            continue
        for path in paths:
            with contextlib.suppress(OSError):
                if path.is_file() and not path.is_fifo() and core in path.read_bytes():
                    obs.files_with_password.add(path.name)


@dataclass
class SlowRun:
    db: SeededDb
    first: tuple[int, str, str]
    second: tuple[int, str, str]
    second_env: dict[str, str]
    obs: Observation


@pytest.fixture(scope="module")
def slow_run(request: pytest.FixtureRequest, mysql_big_db: SeededDb) -> SlowRun:
    runner: Runner = request.getfixturevalue("module_runner")
    env = runner.env(**db_settings(mysql_big_db))
    password = mysql_big_db.password.encode()
    obs = Observation()
    first = runner.popen(env)
    second_result: subprocess.CompletedProcess[str] | None = None
    second_env = runner.env()  # files only, same lock file
    db_name = mysql_big_db.name.encode()
    while first.poll() is None:
        scan_proc(password, db_name, runner.tmpdir, obs)
        if obs.seen_dumper and second_result is None:
            second_result = runner.run(second_env)
    out, err = first.communicate()
    scan_proc(password, db_name, runner.tmpdir, obs)
    assert second_result is not None, "the dump finished before the second run could be started"
    return SlowRun(
        mysql_big_db,
        (first.returncode, out, err),
        (second_result.returncode, second_result.stdout, second_result.stderr),
        second_env,
        obs,
    )


@pytest.fixture(scope="module")
def module_runner(
    tmp_path_factory: pytest.TempPathFactory,
    *,
    aws_env: dict[str, str],
    imds: Imds,
    bucket: str,
    kms_key_arn: str,
    source_tree: list[Path],
) -> Runner:
    return make_runner(
        tmp_path_factory.mktemp("slow"),
        aws_env=aws_env,
        imds=imds,
        bucket=bucket,
        kms_key_arn=kms_key_arn,
        source_tree=source_tree,
    )


def test_password_never_in_any_process_argv_or_environment(slow_run: SlowRun) -> None:
    obs = slow_run.obs
    assert slow_run.first[0] == 0, slow_run.first[1] + slow_run.first[2]
    assert obs.seen_dumper, "the scan must have watched the dump"
    assert obs.seen_uploader, "the scan must have watched the upload"
    assert obs.scans > 10
    assert obs.leaks == []


def test_password_never_printed(slow_run: SlowRun) -> None:
    core = slow_run.db.password.split("#")[0]
    for _, out, err in (slow_run.first, slow_run.second):
        assert core not in out + err


def test_the_password_reaches_the_tools_only_through_a_private_fifo(
    slow_run: SlowRun, module_runner: Runner
) -> None:
    assert slow_run.obs.credential_modes == {(0o700, 0o600)}
    assert slow_run.obs.files_with_password == set(), "no file of the run ever held the password"
    assert module_runner.leftovers() == [], "temp dir removed after the run"


def test_a_second_run_meanwhile_says_so_and_does_not_fail(slow_run: SlowRun, s3: Any, bucket: str) -> None:
    assert last_line(slow_run.first[1]).startswith("schoolbackup-dump: OK s3://")
    code, out, _ = slow_run.second
    assert code == 0, "a doubled invocation is no failure: the dump-failed alarm stays quiet"
    assert last_line(out).startswith(
        "schoolbackup-dump: SKIPPED: another schoolbackup-dump run is in progress"
    )
    prefix = dump_prefix(slow_run.second_env["SB_SCHEDULED_TIME"])
    assert list_keys(s3, bucket, prefix) == [], "it uploaded nothing"

"""While a (slow) dump runs: the DB password is in no process's argv or environment, the credential
file is private, and a second run started meanwhile is refused by the lock."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .conftest import Imds, Runner, SeededDb, assert_failed_cleanly, db_settings, last_line, make_runner

pytestmark = pytest.mark.integration


@dataclass
class Observation:
    scans: int = 0
    leaks: list[str] = field(default_factory=list)  # "<pid> <cmdline|environ>: <command>"
    seen_dumper: bool = False
    seen_uploader: bool = False
    credential_modes: set[tuple[int, int]] = field(default_factory=set)  # (dir mode, file mode)


def scan_proc(password: bytes, tmpdir: Path, obs: Observation) -> None:
    obs.scans += 1
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # gone meanwhile
            continue
        # the whole password, or its unique random core in any quoting/escaping
        core = password.split(b"#")[0]
        if password in cmdline or core in cmdline:
            obs.leaks.append(f"{pid} cmdline: {cmdline[:80]!r}")
        if password in environ or core in environ:
            obs.leaks.append(f"{pid} environ: {cmdline[:80]!r}")
        if b"mariadb-dump\0--defaults-extra-file=" + str(tmpdir).encode() in cmdline:
            obs.seen_dumper = True
        if b"\0upload\0--bucket\0" in cmdline:  # lambdas/dump/s3put.py streaming a part
            obs.seen_uploader = True
    for work in tmpdir.glob("schoolbackup-dump.*"):
        with contextlib.suppress(OSError):  # not there yet / already gone
            obs.credential_modes.add(
                (stat.S_IMODE(work.stat().st_mode), stat.S_IMODE((work / "my.cnf").stat().st_mode))
            )


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
    while first.poll() is None:
        scan_proc(password, runner.tmpdir, obs)
        if obs.seen_dumper and second_result is None:
            second_result = runner.run(second_env)
    out, err = first.communicate()
    scan_proc(password, runner.tmpdir, obs)
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


def test_credential_file_is_private_while_it_exists(slow_run: SlowRun, module_runner: Runner) -> None:
    assert slow_run.obs.credential_modes == {(0o700, 0o600)}
    assert module_runner.leftovers() == [], "temp dir removed after the run"


def test_second_run_is_refused_while_the_first_holds_the_lock(
    slow_run: SlowRun, module_runner: Runner, s3: Any, bucket: str
) -> None:
    assert last_line(slow_run.first[1]).startswith("schoolbackup-dump: OK s3://")
    line = assert_failed_cleanly(
        slow_run.second, module_runner, s3, bucket, env=slow_run.second_env, step="lock"
    )
    assert "another schoolbackup-dump run is still in progress" in line

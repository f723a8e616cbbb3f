"""lambdas/dump/dbsecret.py: the DB credentials stay in memory, bad secrets are named, never echoed."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lambdas.dump import dbsecret

SOURCE = Path(dbsecret.__file__)
PASSWORD = 'p4ss "quoted" back\\slash: colon $x'
SECRET = {"username": "schoolbackup_dump", "password": PASSWORD}


@pytest.mark.parametrize(
    ("secret", "host", "port", "name", "message"),
    [
        ({"username": "u"}, "db", "", "school", 'secret has no "password"'),
        ({"password": PASSWORD}, "db", "", "school", 'secret has no "username"'),
        ({**SECRET, "password": ""}, "db", "", "school", 'secret has no "password"'),
        (SECRET, "", "", "school", "no database host: set SB_DB_HOST or"),
        (SECRET, "db", "", "", "no database name: set SB_DB_NAME or"),
        ({**SECRET, "host": "db; reboot"}, "", "", "school", "host in the secret is not a host name"),
        (SECRET, "db", "70000", "school", "database port is not a port"),
        ({**SECRET, "port": "33o6"}, "db", "", "school", "database port is not a port"),
        ({**SECRET, "dbname": "school; drop"}, "db", "", "", "database name is not a plain name"),
        ({**SECRET, "password": "two\nlines"}, "db", "", "school", "contain a line break or NUL"),
    ],
)
def test_an_unusable_secret_is_named_without_repeating_it(
    secret: dict[str, Any], host: str, port: str, name: str, message: str
) -> None:
    with pytest.raises(dbsecret.SecretError) as caught:
        dbsecret.credentials("mysql", secret, host, port, name)
    assert message in str(caught.value)
    assert PASSWORD not in str(caught.value) and "two\nlines" not in str(caught.value)


def test_settings_come_from_the_secret_unless_overridden_and_the_port_is_decimal() -> None:
    secret = {**SECRET, "host": "db.internal", "port": 3307, "dbname": "school"}
    assert dbsecret.credentials("mysql", secret, "", "", "")[0] == [
        "db.internal",
        "3307",
        "school",
        "schoolbackup_dump",
    ]
    assert dbsecret.credentials("postgres", secret, "other", "05432", "site")[0][:3] == [
        "other",
        "5432",
        "site",
    ]
    assert dbsecret.credentials("postgres", SECRET, "db", "", "school")[0][1] == "5432"


def test_the_option_file_and_the_password_file_quote_every_special_character() -> None:
    _, mysql = dbsecret.credentials("mysql", SECRET, "db", "", "school")
    assert mysql == (
        '[client]\nuser="schoolbackup_dump"\npassword="p4ss \\"quoted\\" back\\\\slash: colon $x"\n'
    )
    _, pgpass = dbsecret.credentials("postgres", SECRET, "db", "", "school")
    assert pgpass == '*:*:*:schoolbackup_dump:p4ss "quoted" back\\\\slash\\: colon $x\n'


def _serve(tmp_path: Path, engine: str, stdin: str, lifetime: str = "60") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SOURCE), "serve", engine, str(tmp_path / "creds"), "db", "", "school", lifetime],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_the_keeper_hands_the_credentials_to_a_tool_in_memory_only(tmp_path: Path) -> None:
    served = _serve(tmp_path, "mysql", json.dumps(json.dumps(SECRET)))  # as the AWS CLI prints it
    assert served.returncode == 0, served.stderr
    host, port, name, user, keeper = served.stdout.split()
    assert (host, port, name, user) == ("db", "3306", "school", "schoolbackup_dump")
    fifo = tmp_path / "creds"
    try:
        assert stat.S_ISFIFO(fifo.stat().st_mode) and stat.S_IMODE(fifo.stat().st_mode) == 0o600
        assert PASSWORD not in served.stdout + served.stderr
        tool = tmp_path / "tool"  # a stand-in for mariadb-dump: shows what it was given
        tool.write_text(
            '#!/bin/sh\nf="${1#--defaults-file=}"\nreadlink "/proc/$$/fd/${f#/dev/fd/}"\n'
            'stat -L -c %a "$f"\ncat "$f"\nshift\necho "args: $*"\n'
        )
        tool.chmod(0o700)
        for _ in range(10):  # one reader at a time, as often as the run needs; one copy each
            done = subprocess.run(
                [sys.executable, str(SOURCE), "exec", "mysql", str(fifo), str(tool), "--single-transaction"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            link, mode, *rest = done.stdout.splitlines()
            assert link.startswith("/memfd:schoolbackup-db-credentials"), "in memory, on no filesystem"
            assert mode == "600"
            assert "\n".join(rest[:3]) + "\n" == dbsecret.credentials("mysql", SECRET, "db", "", "school")[1]
            assert rest[3] == "args: --single-transaction"
        assert not [p for p in tmp_path.iterdir() if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    finally:
        os.kill(int(keeper), signal.SIGTERM)
    assert _gone(int(keeper)), "the keeper stops on TERM"


def test_postgres_tools_get_the_password_file_through_pgpassfile(tmp_path: Path) -> None:
    served = _serve(tmp_path, "postgres", json.dumps(SECRET))
    keeper = int(served.stdout.split()[-1])
    show = 'echo "$PGPASSFILE"; cat "$PGPASSFILE"'
    command = [sys.executable, str(SOURCE), "exec", "postgres", str(tmp_path / "creds"), "sh", "-c", show]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    finally:
        os.kill(keeper, signal.SIGTERM)
    path, line = done.stdout.splitlines()
    assert path.startswith("/dev/fd/")
    assert line + "\n" == dbsecret.credentials("postgres", SECRET, "db", "", "school")[1]


def test_the_keeper_ends_by_itself_after_its_lifetime(tmp_path: Path) -> None:
    served = _serve(tmp_path, "mysql", json.dumps(SECRET), lifetime="0.5")
    assert _gone(int(served.stdout.split()[-1]))


@pytest.mark.parametrize("stdin", ["", "not json", '"[1, 2]"', json.dumps(json.dumps({"username": "u"}))])
def test_a_bad_secret_value_fails_with_a_reason_and_starts_no_keeper(tmp_path: Path, stdin: str) -> None:
    served = _serve(tmp_path, "mysql", stdin)
    assert served.returncode == dbsecret.EXIT_BAD_SECRET
    assert served.stderr.strip() in ("secret value is not a JSON object", 'secret has no "password"')
    assert served.stdout == ""
    assert not (tmp_path / "creds").exists()

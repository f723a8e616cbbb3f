"""dbsecret: the DB password of the dump lives in the memory of one process, never in a file.

Run by ``schoolbackup-dump.sh`` on the web server (the SSM document embeds this file next to the
script). Standard library only, Python 3.9+.

``serve`` reads the Secrets Manager SecretString (as the AWS CLI prints it, a JSON string) on stdin,
validates it, creates a FIFO and forks a *keeper*: a process that holds the client credentials
(a MySQL option file or a PostgreSQL password-file line) in memory and hands them out through the
FIFO, one reader at a time, until it is stopped (or its time limit passes). It prints the connection
settings (host, port, database, user, keeper pid), one per line, and returns at once.

``exec`` reads the credentials from the FIFO into an anonymous memory file (memfd: it has no name on
any filesystem and disappears with the process) and replaces itself with the database tool:
MySQL/MariaDB tools get ``--defaults-file=/dev/fd/N`` as their first option (the only option file they
read: no ~/.my.cnf, no /etc/my.cnf), PostgreSQL tools get ``PGPASSFILE=/dev/fd/N`` (libpq insists on
a regular file; a memfd is one).

A run killed with SIGKILL (SSM's timeout) takes the keeper and every tool with it: what remains is
an empty FIFO node, which the next run sweeps. The password is never in argv, in an environment,
or in a file on any filesystem.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
from typing import NoReturn

EXIT_BAD_SECRET = 3
_HOST = re.compile(r"[A-Za-z0-9._:-]+")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}")


class SecretError(Exception):
    """The secret cannot be used; the message says why without repeating any of it."""


def credentials(
    engine: str, secret: dict[str, object], host: str, port: str, name: str
) -> tuple[list[str], str]:
    """(connection settings [host, port, dbname, user], client credential text) from a secret."""
    for key in ("username", "password"):
        if not isinstance(secret.get(key), str) or not secret[key]:
            raise SecretError(f'secret has no "{key}"')
    user, password = str(secret["username"]), str(secret["password"])
    host = host or str(secret.get("host") or "")
    port = port or str(secret.get("port") or "") or ("3306" if engine == "mysql" else "5432")
    name = name or str(secret.get("dbname") or "")
    if not host:
        raise SecretError('no database host: set SB_DB_HOST or "host" in the secret')
    if not name:
        raise SecretError('no database name: set SB_DB_NAME or "dbname" in the secret')
    if not _HOST.fullmatch(host):
        raise SecretError("database host in the secret is not a host name")
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise SecretError("database port is not a port")
    port = str(int(port))
    if not _NAME.fullmatch(name):
        raise SecretError("database name is not a plain name")
    if any(c in user + password for c in "\n\r\0"):
        raise SecretError("username/password contain a line break or NUL")
    if engine == "mysql":

        def quoted(value: str) -> str:
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

        text = f"[client]\nuser={quoted(user)}\npassword={quoted(password)}\n"
    else:

        def escaped(value: str) -> str:
            return value.replace("\\", "\\\\").replace(":", "\\:")

        text = f"*:*:*:{escaped(user)}:{escaped(password)}\n"
    return [host, port, name, user], text


def _keep(fifo: str, text: bytes, lifetime: float) -> NoReturn:
    """The keeper: hand ``text`` to each reader of ``fifo`` until stopped or ``lifetime`` passes."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    timer = threading.Timer(lifetime, lambda: os._exit(0))
    timer.daemon = True
    timer.start()
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY)  # waits for a reader
        except OSError:
            os._exit(0)  # the FIFO is gone: the run cleaned up
        try:
            # One message, ended by NUL (which the credentials cannot hold), far below PIPE_BUF: one
            # atomic write. The loop may open the FIFO again while the last reader still has it open
            # and write a second copy; the reader stops at the first NUL.
            os.write(fd, text + b"\0")
        except OSError:
            pass  # the reader went away
        finally:
            os.close(fd)


def serve(argv: list[str]) -> int:
    engine, fifo, host, port, name, lifetime = argv
    try:
        raw = json.load(sys.stdin)
        secret = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        secret = None
    try:
        if not isinstance(secret, dict):
            raise SecretError("secret value is not a JSON object")
        settings, text = credentials(engine, secret, host, port, name)
    except SecretError as err:
        print(err, file=sys.stderr)
        return EXIT_BAD_SECRET
    os.mkfifo(fifo, 0o600)
    pid = os.fork()
    if pid == 0:
        _keep(fifo, text.encode(), float(lifetime))
    print("\n".join([*settings, str(pid)]))
    return 0


def run_tool(argv: list[str]) -> NoReturn:
    """``exec <engine> <fifo> <tool> [args...]``: the tool, with the credentials in a memfd."""
    engine, fifo, *command = argv
    text = b""
    with open(fifo, "rb", buffering=0) as source:
        while b"\0" not in text:
            chunk = source.read(4096)
            if not chunk:
                print(
                    "dbsecret: the credential keeper ended before it handed out the credentials",
                    file=sys.stderr,
                )
                sys.exit(EXIT_BAD_SECRET)
            text += chunk
    text = text.split(b"\0", 1)[0]
    memfd = os.memfd_create("schoolbackup-db-credentials", 0)  # inherited by the tool (no CLOEXEC)
    os.fchmod(memfd, 0o600)  # libpq and the MySQL client ignore credentials others could read
    os.write(memfd, text)
    os.lseek(memfd, 0, os.SEEK_SET)
    path = f"/dev/fd/{memfd}"
    if engine == "mysql":
        command = [command[0], f"--defaults-file={path}", *command[1:]]
    else:
        os.environ["PGPASSFILE"] = path
    os.execvp(command[0], command)  # noqa: S606 - the dump's own tool, found on PATH like the script does


def main(argv: list[str]) -> int:
    if len(argv) >= 7 and argv[0] == "serve":
        return serve(argv[1:])
    if len(argv) >= 4 and argv[0] == "exec":
        run_tool(argv[1:])
    print(
        "usage: dbsecret serve ENGINE FIFO HOST PORT NAME LIFETIME | exec ENGINE FIFO TOOL [ARG...]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``restore files`` and ``restore dump``: one night's dump back onto this machine, verified before it lands.

The slot is the newest dump folder of the source whose time (the folder name, UTC) falls on ``--date``
in the configured timezone and that the one state table calls usable (manifest says ok, every object
there with its size); a newer one on that day that is not usable is skipped, and the command says why.
Object keys come from the manifest only (a later attempt names its objects ``*.attempt-<n>.*``).

Nothing is ever half-written: every object is streamed into a temporary file next to the destination
while its SHA-256 and byte count are computed, and compared with the manifest before anything appears
at the destination. Files are extracted (``tarfile``'s ``data`` filter: no absolute paths, no ``..``,
no devices, no links out of the destination) into a temporary folder next to ``--to``, which is then
renamed into place; a database dump is linked into place only when it is complete. Temporary files go
on every error and on Ctrl-C, and an existing destination is never overwritten. A new folder and a new
dump file are readable by the restoring user only (0700 / 0600): they hold the school's data.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shlex
import shutil
import signal
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Final, cast
from zoneinfo import ZoneInfo

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from cli.backupctl.context import Cli, speaks_aws
from cli.backupctl.errors import CliError, UsageError
from cli.backupctl.output import JsonFlag, Output
from lambdas.common.aws.dumps import inspect_dump
from lambdas.common.contracts import DUMP_PREFIX, State
from lambdas.common.jobs.restore_test import CheckedStream, ContentError, decoder_for
from lambdas.common.manifest import (
    KIND_DB,
    KIND_FILES,
    DumpFolder,
    Manifest,
    ManifestObject,
    list_dump_day,
    list_sources,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK: Final = 1024 * 1024  # bytes read from S3 (and from the temporary archive) at a time
NEARBY_DAYS: Final = 7  # how far around --date to look for days that do have a usable dump
SHOWN_ENTRIES: Final = 10  # entries named when --path matches nothing
SHOWN_REFUSED: Final = 5  # entries named that the safe filter refused
TEMP_SUFFIX: Final = ".backupctl-tmp"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DB_KEY = re.compile(r"^db-(?P<name>.+?)(?:\.attempt-\d+)?\.sql\.(?:gz|zst)$")
_COMPRESSED = {".gz": "gzip", ".zst": "zstd"}


# ---------------------------------------------------------------- command line


def parse_day(raw: str) -> date:
    """``--date`` as a calendar day (YYYY-MM-DD only)."""
    text = raw.strip()
    try:
        if not _DAY.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--date {raw!r} is not a day like 2026-11-26 (YYYY-MM-DD).") from None


def parse_member_path(raw: str | None) -> tuple[str, ...]:
    """``--path`` as path components inside the archive; () means the whole archive."""
    if raw is None:
        return ()
    parts = _parts(raw)
    if ".." in parts:
        raise UsageError(
            f"--path {raw!r} contains '..'; give a path inside the archive like var/www/uploads."
        )
    return parts


def _parts(name: str) -> tuple[str, ...]:
    """A tar member name (or --path) as components: no leading "/" or "./", no empty parts."""
    return tuple(p for p in name.split("/") if p not in ("", "."))


def _destination(raw: Path) -> Path:
    """``--to`` as an absolute path; its folder must exist. The last part is taken as it is (not resolved)."""
    expanded = raw.expanduser()
    parent = expanded.parent.resolve()
    if not parent.is_dir():
        raise UsageError(f"The folder {parent} does not exist: create it first or choose another --to.")
    dest = parent / expanded.name
    if dest.is_symlink():
        raise UsageError(f"--to {dest} is a symbolic link; give a new path (nothing is ever overwritten).")
    return dest


def new_folder(raw: Path) -> Path:
    """``--to DIR`` of restore files: absent or an empty folder (never overwritten)."""
    dest = _destination(raw)
    if dest.exists():
        if not dest.is_dir():
            raise UsageError(f"--to {dest} exists and is not a folder; choose a new or empty folder.")
        if any(dest.iterdir()):
            raise UsageError(
                f"--to {dest} is not empty; restore into a new or empty folder (nothing is ever overwritten)."
            )
    return dest


def new_file(raw: Path) -> Path:
    """``--to FILE`` of restore dump: must not exist yet (never overwritten)."""
    dest = _destination(raw)
    if dest.exists():
        raise UsageError(f"--to {dest} exists already; choose a new file name (nothing is ever overwritten).")
    return dest


# ---------------------------------------------------------------- which dump


@dataclass(frozen=True)
class Slot:
    """The dump chosen for a day, and the newer ones of that day that were skipped (with why)."""

    folder: DumpFolder
    manifest: Manifest
    zone: ZoneInfo
    skipped: tuple[tuple[DumpFolder, str], ...] = ()

    @property
    def local_time(self) -> datetime:
        return self.folder.when.astimezone(self.zone)

    def label(self) -> str:
        return describe(self.folder, self.zone)

    def skipped_dicts(self) -> list[dict[str, str]]:
        return [
            {"slot": f.prefix, "time": f.when.astimezone(self.zone).isoformat(), "reason": why}
            for f, why in self.skipped
        ]


def describe(folder: DumpFolder, zone: ZoneInfo) -> str:
    """``the dump of 26.11.2026 01:30 (20261126T0030Z)``."""
    stamp = folder.prefix.rstrip("/").rsplit("/", 1)[-1]
    return f"the dump of {folder.when.astimezone(zone):%d.%m.%Y %H:%M} ({stamp})"


def choose_source(s3: S3Client, bucket: str, wanted: str | None) -> str:
    sources = list_sources(s3, bucket)
    if wanted is not None:
        if wanted in sources:
            return wanted
        known = ", ".join(sources) if sources else "none"
        raise UsageError(
            f"There are no dumps of --source {wanted} in s3://{bucket}/{DUMP_PREFIX}/ (sources with dumps: {known})."
        )
    if not sources:
        raise CliError(
            f"There are no dumps at all in s3://{bucket}/{DUMP_PREFIX}/: there is nothing to restore from."
        )
    if len(sources) > 1:
        raise UsageError(
            f"The bucket holds dumps of several sources ({', '.join(sources)}); choose one with --source."
        )
    return sources[0]


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the local day ``day`` in UTC (23, 24 or 25 hours long)."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def folders_between(
    s3: S3Client, bucket: str, source: str, start: datetime, end: datetime
) -> list[DumpFolder]:
    """Dump folders of ``source`` with start <= time < end, newest first (one listing per UTC day)."""
    found: list[DumpFolder] = []
    day = datetime.combine(start.date(), time(0), tzinfo=UTC)
    while day < end:
        found.extend(f for f in list_dump_day(s3, bucket, source, day) if start <= f.when < end)
        day += timedelta(days=1)
    return sorted(found, key=lambda f: f.when, reverse=True)


def _judge(s3: S3Client, bucket: str, folder: DumpFolder) -> tuple[Manifest | None, str]:
    """The manifest of a usable dump (and ""), or None and why the dump is not usable."""
    reading, manifest = inspect_dump(s3, bucket, folder)
    if reading.state is State.USABLE and manifest is not None:
        return manifest, ""
    return None, reading.verify_detail() or "is not usable"


def _first_usable(
    s3: S3Client, bucket: str, folders: Iterable[DumpFolder]
) -> tuple[DumpFolder | None, Manifest | None, list[tuple[DumpFolder, str]]]:
    skipped: list[tuple[DumpFolder, str]] = []
    for folder in folders:
        manifest, why = _judge(s3, bucket, folder)
        if manifest is not None:
            return folder, manifest, skipped
        skipped.append((folder, why))
    return None, None, skipped


def _usable_day(s3: S3Client, bucket: str, folders: list[DumpFolder]) -> bool:
    return bool(folders) and _first_usable(s3, bucket, folders)[0] is not None


def _nearest_days(
    s3: S3Client, bucket: str, source: str, day: date, zone: ZoneInfo
) -> tuple[date | None, date | None]:
    """The nearest local days before and after ``day`` (within NEARBY_DAYS) that have a usable dump."""
    start, _ = local_day_bounds(day - timedelta(days=NEARBY_DAYS), zone)
    _, end = local_day_bounds(day + timedelta(days=NEARBY_DAYS), zone)
    by_day: dict[date, list[DumpFolder]] = {}
    for folder in folders_between(s3, bucket, source, start, end):
        by_day.setdefault(folder.when.astimezone(zone).date(), []).append(folder)
    before = after = None
    for offset in range(1, NEARBY_DAYS + 1):
        earlier, later = day - timedelta(days=offset), day + timedelta(days=offset)
        if before is None and _usable_day(s3, bucket, by_day.get(earlier, [])):
            before = earlier
        if after is None and _usable_day(s3, bucket, by_day.get(later, [])):
            after = later
    return before, after


def find_slot(s3: S3Client, bucket: str, source: str, day: date, zone: ZoneInfo) -> Slot:
    """The newest usable dump of ``source`` on the local day ``day``; CliError naming nearby days if none."""
    start, end = local_day_bounds(day, zone)
    folders = folders_between(s3, bucket, source, start, end)
    folder, manifest, skipped = _first_usable(s3, bucket, folders)
    if folder is not None and manifest is not None:
        return Slot(folder, manifest, zone, tuple(skipped))
    if skipped:
        why = "; ".join(f"{describe(f, zone)} {reason}" for f, reason in skipped)
        what = f"No usable dump of {source} on {day:%Y-%m-%d} ({zone.key}): {why}."
    else:
        what = f"There is no dump of {source} on {day:%Y-%m-%d} ({zone.key})."
    before, after = _nearest_days(s3, bucket, source, day, zone)
    near = [f"{d:%Y-%m-%d}" for d in (before, after) if d is not None]
    if near:
        where = " and ".join(near)
        hint = f" The nearest {'days' if len(near) > 1 else 'day'} with a usable dump: {where} (pass it as --date)."
    else:
        hint = (
            f" No day from {day - timedelta(days=NEARBY_DAYS):%Y-%m-%d} to {day + timedelta(days=NEARBY_DAYS):%Y-%m-%d}"
            " has a usable dump either (see `backupctl status`)."
        )
    raise CliError(what + hint)


# ---------------------------------------------------------------- download, verified


@dataclass
class Fetched:
    """One object as it was downloaded: what the manifest says, what came."""

    obj: ManifestObject
    sha256: str
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.obj.key, "sha256": self.sha256, "bytes": self.bytes, "verified": True}


class _Meter:
    """Chunks passed on unchanged, hashed and counted on the way (and shown on the progress bar)."""

    def __init__(self, chunks: Iterable[bytes], advance: Callable[[int], None]) -> None:
        self._chunks = iter(chunks)
        self._advance = advance
        self.digest = hashlib.sha256()
        self.bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.digest.update(chunk)
            self.bytes += len(chunk)
            self._advance(len(chunk))
            yield chunk


def _short(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def _check(obj: ManifestObject, meter: _Meter, slot: Slot) -> Fetched:
    """Raise unless what came is exactly what the manifest lists."""
    got = meter.digest.hexdigest()
    where = f"{_short(obj.key)} of {slot.label()}"
    if meter.bytes != obj.bytes:
        raise CliError(
            f"Refused {where}: it has {meter.bytes} bytes, the manifest says {obj.bytes} "
            f"(SHA-256 {got}, the manifest says {obj.sha256}); the object is truncated or was replaced. "
            "Nothing was written; try another --date."
        )
    if got != obj.sha256:
        raise CliError(
            f"Refused {where}: its SHA-256 is {got}, the manifest says {obj.sha256} ({meter.bytes} bytes "
            "each); the object was changed or replaced after the dump. Nothing was written; try another --date."
        )
    return Fetched(obj, got, meter.bytes)


@contextlib.contextmanager
def _progress(out: Output, label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr (none with --json or off a terminal); yields what advances it."""
    if out.as_json or not out.errors.is_terminal:
        yield lambda _n: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=out.errors, transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


@contextlib.contextmanager
def _body(s3: S3Client, bucket: str, obj: ManifestObject) -> Iterator[Iterable[bytes]]:
    body = s3.get_object(Bucket=bucket, Key=obj.key)["Body"]
    try:
        yield body.iter_chunks(CHUNK)
    finally:
        body.close()


class Scratch:
    """Temporary files and folders next to the destination, removed unless handed over (try/finally)."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self._paths: list[Path] = []

    def file(self) -> tuple[Path, IO[bytes]]:
        fd, name = _os_call(
            lambda: tempfile.mkstemp(prefix=f".{self.dest.name}.", suffix=TEMP_SUFFIX, dir=self.dest.parent),
            self.dest.parent,
        )
        path = Path(name)
        self._paths.append(path)
        return path, os.fdopen(fd, "wb")

    def folder(self) -> Path:
        path = Path(
            _os_call(
                lambda: tempfile.mkdtemp(
                    prefix=f".{self.dest.name}.", suffix=TEMP_SUFFIX, dir=self.dest.parent
                ),
                self.dest.parent,
            )
        )
        self._paths.append(path)
        return path

    def kept(self, path: Path) -> None:
        self._paths.remove(path)

    def __enter__(self) -> Scratch:
        # A closed SSH session (SIGHUP) or a kill (SIGTERM) must clean up too: school data must not stay
        # behind in hidden files. Both become KeyboardInterrupt, which the finally-paths already handle.
        self._signals: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGTERM, signal.SIGHUP):
                self._signals[number] = signal.signal(number, _interrupt)
        return self

    def __exit__(self, *_exc: object) -> None:
        for number, previous in self._signals.items():
            signal.signal(number, previous)
        for path in reversed(self._paths):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self._paths.clear()


def _interrupt(number: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {number}")


def _os_call(call: Callable[[], Any], where: Path) -> Any:
    try:
        return call()
    except OSError as err:
        raise CliError(f"Cannot write in {where}: {err.strerror or err}.") from None


EXPANSION = 4  # how much bigger a gzip'd dump or archive usually is once decompressed


def _room_for(where: Path, size: int, what: str) -> None:
    free = shutil.disk_usage(where).free
    if free < size:
        raise CliError(
            f"{where} has {_human(free)} free, {what} needs {_human(size)}; free some space or choose another --to."
        )


def download_raw(
    s3: S3Client, bucket: str, slot: Slot, obj: ManifestObject, into: IO[bytes], *, out: Output
) -> Fetched:
    """The stored bytes of ``obj`` into ``into``, verified against the manifest."""
    with _body(s3, bucket, obj) as chunks, _progress(out, _short(obj.key), obj.bytes) as advance:
        meter = _Meter(chunks, advance)
        for chunk in meter:
            _write(into, chunk)
    into.flush()
    os.fsync(into.fileno())
    return _check(obj, meter, slot)


def download_decompressed(
    s3: S3Client, bucket: str, slot: Slot, obj: ManifestObject, into: IO[bytes], *, out: Output
) -> tuple[Fetched, int]:
    """``obj`` decompressed into ``into``; the compressed stream verified on the way. (fetched, bytes written)"""
    try:
        decoder = decoder_for(obj.key)
    except ContentError as err:
        raise CliError(f"{_short(obj.key)} of {slot.label()} {err}.") from None
    written = 0
    problem = ""
    with _body(s3, bucket, obj) as chunks, _progress(out, _short(obj.key), obj.bytes) as advance:
        meter = _Meter(chunks, advance)
        try:
            for raw in meter:
                for piece in decoder.feed(raw):
                    _write(into, piece)
                    written += len(piece)
            decoder.finish()
        except ContentError as err:
            problem = str(err)
            for _ in meter:  # finish the checksum: a wrong object says so before a broken one
                pass
    fetched = _check(obj, meter, slot)
    if problem:
        raise CliError(
            f"{_short(obj.key)} of {slot.label()} matches its manifest but {problem}: the dump was broken "
            "when it was written. Nothing was written; try another --date."
        )
    into.flush()
    os.fsync(into.fileno())
    return fetched, written


def _write(into: IO[bytes], data: bytes) -> None:
    try:
        into.write(data)
    except OSError as err:
        raise CliError(
            f"Cannot write {getattr(into, 'name', 'the temporary file')}: {err.strerror or err}. Nothing was restored."
        ) from None


# ---------------------------------------------------------------- files


@dataclass
class Extracted:
    files: list[str] = field(default_factory=list)  # regular files and links, as named in the archive
    bytes: int = 0
    folders: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name, why) the safe filter refused
    children: dict[int, set[str]] = field(default_factory=dict)  # depth -> entries below --path's ancestors

    def note(self, parts: tuple[str, ...], prefix: tuple[str, ...]) -> None:
        """Remember which entries exist next to the way down to ``prefix`` (for "nothing matched")."""
        for depth in range(min(len(prefix), len(parts))):
            if parts[:depth] != prefix[:depth]:
                break
            seen = self.children.setdefault(depth, set())
            if len(seen) < 1000:
                seen.add(parts[depth])

    def nearby(self, prefix: tuple[str, ...]) -> tuple[str, list[str]]:
        """The deepest existing folder on the way to ``prefix`` and a few of its entries."""
        deepest = max((d for d, seen in self.children.items() if seen), default=0)
        base = "/".join(prefix[:deepest])
        names = sorted(self.children.get(deepest, set()))
        shown = [f"{base}/{n}" if base else n for n in names[:SHOWN_ENTRIES]]
        if len(names) > SHOWN_ENTRIES:
            shown.append("...")
        return base, shown


def _under(parts: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    """Whole components: var/www/up is not under var/www/uploads."""
    return parts[: len(prefix)] == prefix


def _refusal(err: tarfile.TarError) -> str:
    if isinstance(err, tarfile.AbsoluteLinkError):
        return "a link to an absolute path"
    if isinstance(err, tarfile.LinkOutsideDestinationError):
        return "a link that points outside the restored folder"
    if isinstance(err, tarfile.SpecialFileError):
        return "a device or other special file"
    if isinstance(err, (tarfile.AbsolutePathError, tarfile.OutsideDestinationError)):
        return "a path outside the restored folder"
    return str(err)


def extract(archive: Path, obj: ManifestObject, into: Path, prefix: tuple[str, ...]) -> Extracted:
    """The members under ``prefix`` of the verified archive, into the (empty, temporary) folder ``into``."""
    done = Extracted()
    restored: set[tuple[str, ...]] = set()
    folders: list[tuple[Path, float]] = []
    with archive.open("rb") as raw:
        stream = CheckedStream(iter(lambda: raw.read(CHUNK), b""), decoder_for(obj.key))
        with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|") as tar:
            for member in tar:
                parts = _parts(member.name)
                done.note(parts, prefix)
                if not parts or not _under(parts, prefix):
                    continue
                name = "/".join(parts)
                if ".." in parts or (member.islnk() and ".." in _parts(member.linkname)):
                    done.refused.append((name, "a path with '..' in it"))
                    continue
                if member.islnk() and _parts(member.linkname) not in restored:
                    done.refused.append((name, "a hard link to a file that is not restored"))
                    continue
                try:
                    tarfile.data_filter(member, str(into))
                except tarfile.FilterError as err:
                    done.refused.append((name, _refusal(err)))
                    continue
                tar.extract(member, into, set_attrs=True, filter="data")
                restored.add(parts)
                if member.isdir():
                    done.folders += 1
                    folders.append((into.joinpath(*parts), float(member.mtime)))
                else:
                    done.files.append(name)
                    done.bytes += member.size if member.isreg() else 0
        stream.drain()
    for path, mtime in reversed(folders):  # files written into a folder changed its time: set it last
        with contextlib.suppress(OSError):
            os.utime(path, (mtime, mtime))
    return done


def _files_object(slot: Slot) -> ManifestObject:
    found = [o for o in slot.manifest.objects if o.kind == KIND_FILES]
    if len(found) != 1:
        what = "no files archive" if not found else f"{len(found)} files archives"
        raise CliError(f"{slot.label()} lists {what} in its manifest; restore files needs exactly one.")
    return found[0]


def _place_folder(temp: Path, dest: Path) -> None:
    """Rename the finished folder into place; an empty ``dest`` is replaced, anything else refused."""
    mode = dest.stat().st_mode & 0o7777 if dest.is_dir() else None
    if mode is not None:
        temp.chmod(mode)
    try:
        temp.rename(dest)
    except OSError as err:
        if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise UsageError(
                f"--to {dest} was filled by something else meanwhile; nothing was overwritten."
            ) from None
        raise CliError(f"Cannot move the restored files to {dest}: {err.strerror or err}.") from None


def restore_files(
    cli: Cli, day: date, source: str | None, prefix: tuple[str, ...], dest: Path, *, out: Output
) -> dict[str, Any]:
    zone = cli.config.zone
    s3, bucket = cli.aws.s3(), cli.aws.bucket
    source = choose_source(s3, bucket, source)
    slot = find_slot(s3, bucket, source, day, zone)
    _say_skipped(slot, out)
    obj = _files_object(slot)
    want = "/".join(prefix)
    with Scratch(dest) as scratch:
        # The archive, and its files once extracted (compressed about 4x; a guess, checked again by the disk).
        _room_for(dest.parent, obj.bytes * (1 + EXPANSION), _short(obj.key))
        archive, handle = scratch.file()
        with handle:
            fetched = download_raw(s3, bucket, slot, obj, handle, out=out)
        temp = scratch.folder()
        try:
            done = extract(archive, obj, temp, prefix)
        except (ContentError, tarfile.TarError, EOFError) as err:
            raise CliError(
                f"{_short(obj.key)} of {slot.label()} matches its manifest but cannot be unpacked ({err}). "
                "Nothing was restored; try another --date."
            ) from None
        except OSError as err:
            raise CliError(
                f"Cannot write in {dest.parent}: {err.strerror or err}. Nothing was restored."
            ) from None
        if prefix and not done.files and not done.folders:
            base, shown = done.nearby(prefix)
            where = f"{base} holds" if base else "the archive's top level holds"
            refused = f" ({len(done.refused)} entries there are unsafe to restore)" if done.refused else ""
            raise CliError(
                f"Nothing in {_short(obj.key)} of {slot.label()} lies under --path {want}{refused}; "
                f"{where}: {', '.join(shown) or 'nothing'}. Nothing was written."
            )
        _place_folder(temp, dest)
        scratch.kept(temp)
    return {
        "slot": slot.folder.prefix,
        "source": source,
        "time": slot.local_time.isoformat(),
        "time_utc": f"{slot.folder.when:%Y-%m-%dT%H:%M:%SZ}",
        "objects": [fetched.as_dict()],
        "path": want or None,
        "files": len(done.files),
        "bytes": done.bytes,
        "restored": done.files,
        "refused": [{"path": n, "reason": why} for n, why in done.refused],
        "skipped": slot.skipped_dicts(),
        "to": str(dest),
    }


# ---------------------------------------------------------------- dump


def _db_name(obj: ManifestObject) -> str:
    match = _DB_KEY.match(_short(obj.key))
    return match["name"] if match else _short(obj.key)


def _db_object(slot: Slot, wanted: str | None) -> ManifestObject:
    found = [o for o in slot.manifest.objects if o.kind == KIND_DB]
    if not found:
        raise CliError(
            f"{slot.label()} holds no database dump (its manifest lists only files); try restore files."
        )
    names = ", ".join(_db_name(o) for o in found)
    if wanted is not None:
        chosen = [o for o in found if _db_name(o) == wanted]
        if not chosen:
            raise UsageError(f"{slot.label()} holds no dump of --db {wanted}; it holds: {names}.")
        return chosen[0]
    if len(found) > 1:
        raise UsageError(f"{slot.label()} holds dumps of several databases ({names}); choose one with --db.")
    return found[0]


def _compression(key: str) -> str | None:
    return next((name for ext, name in _COMPRESSED.items() if key.endswith(ext)), None)


def _place_file(temp: Path, dest: Path) -> None:
    """Link the finished file into place: fails instead of overwriting a file that appeared meanwhile."""
    try:
        os.link(temp, dest)
    except FileExistsError:
        raise UsageError(
            f"--to {dest} was created by something else meanwhile; nothing was overwritten."
        ) from None
    except OSError:  # a file system without hard links: rename, after one more look
        if dest.exists() or dest.is_symlink():
            raise UsageError(
                f"--to {dest} was created by something else meanwhile; nothing was overwritten."
            ) from None
        _os_call(lambda: temp.rename(dest), dest.parent)


def next_steps(engine: str, host: str, db: str, dest: Path, compression: str | None) -> list[str]:
    """How to load the file into a new, empty database (README: restore into a new database first)."""
    target, file = f"{db}_restored", shlex.quote(str(dest))
    feed = {"gzip": f"gunzip -c {file} | ", "zstd": f"zstd -dc {file} | "}.get(compression or "", "")
    if engine.startswith("postgres"):
        load = f"psql -h {host} -U <master user> -v ON_ERROR_STOP=1 {target}"
        return [
            f"createdb -h {host} -U <master user> {target}",
            f"{feed}{load}" if feed else f"{load} -f {file}",
        ]
    load = f"mysql -h {host} -u <master user> -p {target}"
    return [
        f"mysql -h {host} -u <master user> -p -e 'CREATE DATABASE {target}'",
        # RDS: the dump holds triggers and routines with DEFINER=; with binary logging on (automated backups)
        # the master user may create them only when the parameter group allows it.
        "On RDS, set log_bin_trust_function_creators=1 in the instance's parameter group first "
        "(the dump has triggers and routines), or loading stops at ERROR 1419",
        f"{feed}{load}" if feed else f"{load} < {file}",
    ]


def restore_dump(
    cli: Cli, day: date, source: str | None, db: str | None, dest: Path, *, out: Output
) -> dict[str, Any]:
    zone = cli.config.zone
    s3, bucket = cli.aws.s3(), cli.aws.bucket
    source = choose_source(s3, bucket, source)
    slot = find_slot(s3, bucket, source, day, zone)
    _say_skipped(slot, out)
    obj = _db_object(slot, db)
    stored = _compression(obj.key)
    decompress = dest.suffix.lower() == ".sql"
    asked = _COMPRESSED.get(dest.suffix.lower())
    if asked is not None and asked != stored:
        raise UsageError(
            f"--to {dest.name} names a {asked} file, but {_short(obj.key)} is stored "
            f"{stored or 'uncompressed'}; end the name in .sql (decompressed) or as stored."
        )
    with Scratch(dest) as scratch:
        _room_for(dest.parent, obj.bytes * (EXPANSION if decompress else 1), _short(obj.key))
        temp, handle = scratch.file()
        with handle:
            if decompress:
                fetched, written = download_decompressed(s3, bucket, slot, obj, handle, out=out)
            else:
                fetched = download_raw(s3, bucket, slot, obj, handle, out=out)
                written = fetched.bytes
        _place_file(temp, dest)
    engine = obj.engine or cli.config.dump.engine
    steps = next_steps(engine, cli.config.dump.db_host, _db_name(obj), dest, None if decompress else stored)
    return {
        "slot": slot.folder.prefix,
        "source": source,
        "time": slot.local_time.isoformat(),
        "time_utc": f"{slot.folder.when:%Y-%m-%dT%H:%M:%SZ}",
        "objects": [fetched.as_dict()],
        "db": _db_name(obj),
        "engine": engine,
        "decompressed": decompress,
        "compression": stored,
        "bytes_written": written,
        "inconsistent_tables": list(slot.manifest.inconsistent_tables),
        "skipped": slot.skipped_dicts(),
        "to": str(dest),
        "next_steps": steps,
    }


# ---------------------------------------------------------------- output


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover - the loop always returns


def _say_skipped(slot: Slot, out: Output) -> None:
    for folder, why in slot.skipped:
        out.line(f"Skipped {describe(folder, slot.zone)}: it {why}.", style="yellow")


def _verified_lines(result: dict[str, Any]) -> list[str]:
    return [
        f"  {_short(o['key'])}: {o['bytes']} bytes, SHA-256 {o['sha256']}, as the manifest lists it."
        for o in result["objects"]
    ]


def _slot_label(result: dict[str, Any]) -> str:
    when = datetime.fromisoformat(result["time"])
    stamp = result["slot"].rstrip("/").rsplit("/", 1)[-1]
    return f"the dump of {when:%d.%m.%Y %H:%M} ({stamp})"


def _print_files(result: dict[str, Any], zone: str, out: Output) -> None:
    count = result["files"]
    under = f" under {result['path']}" if result["path"] else ""
    out.line(
        f"Restored {count} file{'' if count == 1 else 's'} ({_human(result['bytes'])}){under} into {result['to']}",
        style="green",
    )
    out.line(f"  from {_slot_label(result)} of {result['source']} ({zone}), verified:")
    for line in _verified_lines(result):
        out.line(line)
    refused = result["refused"]
    if refused:
        shown = ", ".join(f"{r['path']} ({r['reason']})" for r in refused[:SHOWN_REFUSED])
        more = f" and {len(refused) - SHOWN_REFUSED} more" if len(refused) > SHOWN_REFUSED else ""
        out.line(f"Not restored, unsafe to unpack: {shown}{more}.", style="yellow")


def _print_dump(result: dict[str, Any], zone: str, out: Output) -> None:
    size = _human(result["bytes_written"])
    what = f"the SQL of database {result['db']} ({size})"
    if not result["decompressed"]:
        what = f"the {result['compression']}-compressed dump of database {result['db']} ({size}, as stored)"
    out.line(
        f"Wrote {what} to {result['to']}",
        style="green",
    )
    out.line(f"  from {_slot_label(result)} of {result['source']} ({zone}), verified:")
    for line in _verified_lines(result):
        out.line(line)
    if result["inconsistent_tables"]:
        out.line(
            "Note: these tables were dumped without a consistent snapshot (not InnoDB): "
            + ", ".join(result["inconsistent_tables"]),
            style="yellow",
        )
    out.line("Next: load it into a new, empty database, check it, then switch the application over:")
    for step in result["next_steps"]:
        out.line(f"  {step}")


# ---------------------------------------------------------------- commands


def register(restore: typer.Typer) -> None:
    @restore.command("files")
    @speaks_aws
    def files_command(  # noqa: PLR0917 - Typer passes the options positionally
        ctx: typer.Context,
        day: Annotated[
            str,
            typer.Option(
                "--date",
                help="The night to restore, a day in the configured timezone: 2026-11-26.",
                show_default=False,
            ),
        ],
        to: Annotated[
            Path, typer.Option("--to", help="A new or empty folder to restore into.", show_default=False)
        ],
        source: Annotated[
            str | None,
            typer.Option("--source", help="The server (instance id); default: the only one with dumps."),
        ] = None,
        path: Annotated[
            str | None,
            typer.Option(
                "--path", help="Only this file or folder of the archive, e.g. var/www/uploads/class-5a."
            ),
        ] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Files from a night's dump into a new folder, verified against the manifest before anything lands."""
        wanted_day = parse_day(day)
        prefix = parse_member_path(path)
        dest = new_folder(to)
        cli: Cli = ctx.obj
        out = Output(as_json)
        result = restore_files(cli, wanted_day, source, prefix, dest, out=out)
        if as_json:
            out.json(result)
        else:
            _print_files(result, cli.config.timezone, out)

    @restore.command("dump")
    @speaks_aws
    def dump_command(  # noqa: PLR0917 - Typer passes the options positionally
        ctx: typer.Context,
        day: Annotated[
            str,
            typer.Option(
                "--date",
                help="The night to restore, a day in the configured timezone: 2026-11-26.",
                show_default=False,
            ),
        ],
        to: Annotated[
            Path,
            typer.Option(
                "--to",
                help="A new file: FILE.sql gets the SQL, any other name the stored .gz/.zst.",
                show_default=False,
            ),
        ],
        source: Annotated[
            str | None,
            typer.Option("--source", help="The server (instance id); default: the only one with dumps."),
        ] = None,
        db: Annotated[
            str | None, typer.Option("--db", help="The database, when the dump holds several.")
        ] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """The database dump of a night into a new file, verified against the manifest before it lands."""
        wanted_day = parse_day(day)
        dest = new_file(to)
        cli: Cli = ctx.obj
        out = Output(as_json)
        result = restore_dump(cli, wanted_day, source, db, dest, out=out)
        if as_json:
            out.json(result)
        else:
            _print_dump(result, cli.config.timezone, out)

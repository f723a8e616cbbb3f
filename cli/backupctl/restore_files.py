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
from cli.backupctl.restore_common import FromRegion
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
from lambdas.common.messages import capital, say

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


def parse_day(raw: str, language: str = "en") -> date:
    """``--date`` as a calendar day (YYYY-MM-DD only)."""
    text = raw.strip()
    try:
        if not _DAY.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(say("cli.files.bad_date", language, raw=repr(raw))) from None


def parse_member_path(raw: str | None, language: str = "en") -> tuple[str, ...]:
    """``--path`` as path components inside the archive; () means the whole archive."""
    if raw is None:
        return ()
    parts = _parts(raw)
    if ".." in parts:
        raise UsageError(say("cli.files.path_dotdot", language, raw=repr(raw)))
    return parts


def _parts(name: str) -> tuple[str, ...]:
    """A tar member name (or --path) as components: no leading "/" or "./", no empty parts."""
    return tuple(p for p in name.split("/") if p not in ("", "."))


def _destination(raw: Path, language: str) -> Path:
    """``--to`` as an absolute path; its folder must exist. The last part is taken as it is (not resolved)."""
    expanded = raw.expanduser()
    parent = expanded.parent.resolve()
    if not parent.is_dir():
        raise UsageError(say("cli.files.no_folder", language, parent=parent))
    dest = parent / expanded.name
    if dest.is_symlink():
        raise UsageError(say("cli.files.to_symlink", language, dest=dest))
    return dest


def new_folder(raw: Path, language: str = "en") -> Path:
    """``--to DIR`` of restore files: absent or an empty folder (never overwritten)."""
    dest = _destination(raw, language)
    if dest.exists():
        if not dest.is_dir():
            raise UsageError(say("cli.files.to_not_folder", language, dest=dest))
        if any(dest.iterdir()):
            raise UsageError(say("cli.files.to_not_empty", language, dest=dest))
    return dest


def new_file(raw: Path, language: str = "en") -> Path:
    """``--to FILE`` of restore dump: must not exist yet (never overwritten)."""
    dest = _destination(raw, language)
    if dest.exists():
        raise UsageError(say("cli.files.to_exists", language, dest=dest))
    return dest


# ---------------------------------------------------------------- which dump


@dataclass(frozen=True)
class Slot:
    """The dump chosen for a day, and the newer ones of that day that were skipped (with why)."""

    folder: DumpFolder
    manifest: Manifest
    zone: ZoneInfo
    skipped: tuple[tuple[DumpFolder, str], ...] = ()
    language: str = "en"

    @property
    def local_time(self) -> datetime:
        return self.folder.when.astimezone(self.zone)

    def label(self) -> str:
        return describe(self.folder, self.zone, self.language)

    def skipped_dicts(self) -> list[dict[str, str]]:
        return [
            {"slot": f.prefix, "time": f.when.astimezone(self.zone).isoformat(), "reason": why}
            for f, why in self.skipped
        ]


def describe(folder: DumpFolder, zone: ZoneInfo, language: str = "en") -> str:
    """``the dump of 26.11.2026 01:30 (20261126T0030Z)`` (German: ``Dump vom ...``, without article)."""
    stamp = folder.prefix.rstrip("/").rsplit("/", 1)[-1]
    when = f"{folder.when.astimezone(zone):%d.%m.%Y %H:%M}"
    return say("cli.files.dump_of", language, when=when, stamp=stamp)


def _day(day: date, language: str) -> str:
    """A day in a sentence: 26.11.2026 in German, 2026-11-26 in English (a --date to type stays ISO)."""
    return f"{day:%d.%m.%Y}" if language == "de" else f"{day:%Y-%m-%d}"


def choose_source(s3: S3Client, bucket: str, wanted: str | None, language: str = "en") -> str:
    sources = list_sources(s3, bucket)
    where = f"s3://{bucket}/{DUMP_PREFIX}/"
    if wanted is not None:
        if wanted in sources:
            return wanted
        known = ", ".join(sources) if sources else say("cli.files.none", language)
        raise UsageError(say("cli.files.no_such_source", language, source=wanted, where=where, known=known))
    if not sources:
        raise CliError(say("cli.files.no_dumps", language, where=where))
    if len(sources) > 1:
        raise UsageError(say("cli.files.several_sources", language, sources=", ".join(sources)))
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


def _judge(s3: S3Client, bucket: str, folder: DumpFolder, language: str) -> tuple[Manifest | None, str]:
    """The manifest of a usable dump (and ""), or None and why the dump is not usable."""
    reading, manifest = inspect_dump(s3, bucket, folder)
    if reading.state is State.USABLE and manifest is not None:
        return manifest, ""
    return None, reading.verify_detail(language) or say("cli.files.not_usable", language)


def _first_usable(
    s3: S3Client, bucket: str, folders: Iterable[DumpFolder], language: str = "en"
) -> tuple[DumpFolder | None, Manifest | None, list[tuple[DumpFolder, str]]]:
    skipped: list[tuple[DumpFolder, str]] = []
    for folder in folders:
        manifest, why = _judge(s3, bucket, folder, language)
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


def find_slot(  # noqa: PLR0917 - the day's place and the language it is told in
    s3: S3Client, bucket: str, source: str, day: date, zone: ZoneInfo, language: str = "en"
) -> Slot:
    """The newest usable dump of ``source`` on the local day ``day``; CliError naming nearby days if none."""
    start, end = local_day_bounds(day, zone)
    folders = folders_between(s3, bucket, source, start, end)
    folder, manifest, skipped = _first_usable(s3, bucket, folders, language)
    if folder is not None and manifest is not None:
        return Slot(folder, manifest, zone, tuple(skipped), language)
    on = {"source": source, "day": _day(day, language), "zone": zone.key}
    if skipped:
        why = "; ".join(
            say("cli.files.dump_reason", language, dump=describe(f, zone, language), reason=reason)
            for f, reason in skipped
        )
        what = say("cli.files.no_usable", language, why=why, **on)
    else:
        what = say("cli.files.no_dump", language, **on)
    before, after = _nearest_days(s3, bucket, source, day, zone)
    near = [f"{d:%Y-%m-%d}" for d in (before, after) if d is not None]
    if len(near) == 2:
        both = say("cli.files.two_days", language, first=near[0], second=near[1])
        hint = say("cli.files.nearest_days", language, days=both)
    elif near:
        hint = say("cli.files.nearest_day", language, days=near[0])
    else:
        hint = say(
            "cli.files.none_near",
            language,
            start=_day(day - timedelta(days=NEARBY_DAYS), language),
            end=_day(day + timedelta(days=NEARBY_DAYS), language),
        )
    raise CliError(f"{what} {hint}")


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
    where = {"file": _short(obj.key), "dump": slot.label(), "got": got, "sha256": obj.sha256}
    if meter.bytes != obj.bytes:
        raise CliError(
            say("cli.files.refused_size", slot.language, got_bytes=meter.bytes, bytes=obj.bytes, **where)
        )
    if got != obj.sha256:
        raise CliError(say("cli.files.refused_sha", slot.language, bytes=meter.bytes, **where))
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

    def __init__(self, dest: Path, language: str = "en") -> None:
        self.dest = dest
        self.language = language
        self._paths: list[Path] = []

    def file(self) -> tuple[Path, IO[bytes]]:
        fd, name = _os_call(
            lambda: tempfile.mkstemp(prefix=f".{self.dest.name}.", suffix=TEMP_SUFFIX, dir=self.dest.parent),
            self.dest.parent,
            self.language,
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
                self.language,
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


def _os_call(call: Callable[[], Any], where: Path, language: str) -> Any:
    try:
        return call()
    except OSError as err:
        raise CliError(
            say("cli.files.cannot_write_in", language, where=where, error=err.strerror or err)
        ) from None


EXPANSION = 4  # how much bigger a gzip'd dump or archive usually is once decompressed


def _room_for(where: Path, size: int, what: str, language: str = "en") -> None:
    free = shutil.disk_usage(where).free
    if free < size:
        raise CliError(
            say(
                "cli.files.no_room",
                language,
                where=where,
                free=_human(free, language),
                what=what,
                size=_human(size, language),
            )
        )


def download_raw(
    s3: S3Client, bucket: str, slot: Slot, obj: ManifestObject, into: IO[bytes], *, out: Output
) -> Fetched:
    """The stored bytes of ``obj`` into ``into``, verified against the manifest."""
    with _body(s3, bucket, obj) as chunks, _progress(out, _short(obj.key), obj.bytes) as advance:
        meter = _Meter(chunks, advance)
        for chunk in meter:
            _write(into, chunk, slot.language)
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
        raise CliError(
            say(
                "cli.files.cannot_decompress",
                slot.language,
                file=_short(obj.key),
                dump=slot.label(),
                error=err,
            )
        ) from None
    written = 0
    problem = ""
    with _body(s3, bucket, obj) as chunks, _progress(out, _short(obj.key), obj.bytes) as advance:
        meter = _Meter(chunks, advance)
        try:
            for raw in meter:
                for piece in decoder.feed(raw):
                    _write(into, piece, slot.language)
                    written += len(piece)
            decoder.finish()
        except ContentError as err:
            problem = str(err)
            for _ in meter:  # finish the checksum: a wrong object says so before a broken one
                pass
    fetched = _check(obj, meter, slot)
    if problem:
        raise CliError(
            say(
                "cli.files.broken_dump", slot.language, file=_short(obj.key), dump=slot.label(), error=problem
            )
        )
    into.flush()
    os.fsync(into.fileno())
    return fetched, written


def _write(into: IO[bytes], data: bytes, language: str) -> None:
    try:
        into.write(data)
    except OSError as err:
        name = getattr(into, "name", None) or say("cli.files.temp_file", language)
        raise CliError(
            capital(say("cli.files.cannot_write", language, name=name, error=err.strerror or err))
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


def _refusal(err: tarfile.TarError, language: str) -> str:
    if isinstance(err, tarfile.AbsoluteLinkError):
        return say("cli.files.unsafe_absolute_link", language)
    if isinstance(err, tarfile.LinkOutsideDestinationError):
        return say("cli.files.unsafe_link_outside", language)
    if isinstance(err, tarfile.SpecialFileError):
        return say("cli.files.unsafe_special", language)
    if isinstance(err, (tarfile.AbsolutePathError, tarfile.OutsideDestinationError)):
        return say("cli.files.unsafe_outside", language)
    return str(err)  # tarfile's own words (English)


def extract(
    archive: Path, obj: ManifestObject, into: Path, prefix: tuple[str, ...], language: str = "en"
) -> Extracted:
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
                    done.refused.append((name, say("cli.files.unsafe_dotdot", language)))
                    continue
                if member.islnk() and _parts(member.linkname) not in restored:
                    done.refused.append((name, say("cli.files.unsafe_hard_link", language)))
                    continue
                try:
                    tarfile.data_filter(member, str(into))
                except tarfile.FilterError as err:
                    done.refused.append((name, _refusal(err, language)))
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
        key = "cli.files.no_archive" if not found else "cli.files.many_archives"
        raise CliError(capital(say(key, slot.language, dump=slot.label(), n=len(found))))
    return found[0]


def _place_folder(temp: Path, dest: Path, language: str) -> None:
    """Rename the finished folder into place; an empty ``dest`` is replaced, anything else refused."""
    mode = dest.stat().st_mode & 0o7777 if dest.is_dir() else None
    if mode is not None:
        temp.chmod(mode)
    try:
        temp.rename(dest)
    except OSError as err:
        if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise UsageError(say("cli.files.filled_meanwhile", language, dest=dest)) from None
        raise CliError(say("cli.files.cannot_move", language, dest=dest, error=err.strerror or err)) from None


def restore_files(
    cli: Cli, day: date, source: str | None, prefix: tuple[str, ...], dest: Path, *, out: Output
) -> dict[str, Any]:
    zone, lang = cli.config.zone, cli.language
    s3, bucket = cli.aws.s3(), cli.aws.bucket
    source = choose_source(s3, bucket, source, lang)
    slot = find_slot(s3, bucket, source, day, zone, lang)
    _say_skipped(slot, out)
    obj = _files_object(slot)
    want = "/".join(prefix)
    with Scratch(dest, lang) as scratch:
        # The archive, and its files once extracted (compressed about 4x; a guess, checked again by the disk).
        _room_for(dest.parent, obj.bytes * (1 + EXPANSION), _short(obj.key), lang)
        archive, handle = scratch.file()
        with handle:
            fetched = download_raw(s3, bucket, slot, obj, handle, out=out)
        temp = scratch.folder()
        try:
            done = extract(archive, obj, temp, prefix, lang)
        except (ContentError, tarfile.TarError, EOFError) as err:
            raise CliError(
                say("cli.files.cannot_unpack", lang, file=_short(obj.key), dump=slot.label(), error=err)
            ) from None
        except OSError as err:
            raise CliError(
                say("cli.files.cannot_write_restored", lang, where=dest.parent, error=err.strerror or err)
            ) from None
        if prefix and not done.files and not done.folders:
            base, shown = done.nearby(prefix)
            where = (
                say("cli.files.folder_holds", lang, base=base) if base else say("cli.files.top_holds", lang)
            )
            refused = say("cli.files.unsafe_there", lang, n=len(done.refused)) if done.refused else ""
            raise CliError(
                say(
                    "cli.files.nothing_under",
                    lang,
                    file=_short(obj.key),
                    dump=slot.label(),
                    path=want,
                    refused=refused,
                    where=where,
                    shown=", ".join(shown) or say("cli.files.nothing", lang),
                )
            )
        _place_folder(temp, dest, lang)
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
    lang, dump = slot.language, slot.label()
    found = [o for o in slot.manifest.objects if o.kind == KIND_DB]
    if not found:
        raise CliError(capital(say("cli.files.no_db", lang, dump=dump)))
    names = ", ".join(_db_name(o) for o in found)
    if wanted is not None:
        chosen = [o for o in found if _db_name(o) == wanted]
        if not chosen:
            raise UsageError(capital(say("cli.files.no_such_db", lang, dump=dump, db=wanted, names=names)))
        return chosen[0]
    if len(found) > 1:
        raise UsageError(capital(say("cli.files.several_dbs", lang, dump=dump, names=names)))
    return found[0]


def _compression(key: str) -> str | None:
    return next((name for ext, name in _COMPRESSED.items() if key.endswith(ext)), None)


def _place_file(temp: Path, dest: Path, language: str = "en") -> None:
    """Link the finished file into place: fails instead of overwriting a file that appeared meanwhile."""
    try:
        os.link(temp, dest)
    except FileExistsError:
        raise UsageError(say("cli.files.created_meanwhile", language, dest=dest)) from None
    except OSError:  # a file system without hard links: rename, after one more look
        if dest.exists() or dest.is_symlink():
            raise UsageError(say("cli.files.created_meanwhile", language, dest=dest)) from None
        _os_call(lambda: temp.rename(dest), dest.parent, language)


def next_steps(  # noqa: PLR0917 - what the file is, and the language the one sentence among the commands is in
    engine: str, host: str, db: str, dest: Path, compression: str | None, language: str = "en"
) -> list[str]:
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
        say("cli.files.rds_definer", language),
        f"{feed}{load}" if feed else f"{load} < {file}",
    ]


def restore_dump(
    cli: Cli, day: date, source: str | None, db: str | None, dest: Path, *, out: Output
) -> dict[str, Any]:
    zone, lang = cli.config.zone, cli.language
    s3, bucket = cli.aws.s3(), cli.aws.bucket
    source = choose_source(s3, bucket, source, lang)
    slot = find_slot(s3, bucket, source, day, zone, lang)
    _say_skipped(slot, out)
    obj = _db_object(slot, db)
    stored = _compression(obj.key)
    decompress = dest.suffix.lower() == ".sql"
    asked = _COMPRESSED.get(dest.suffix.lower())
    if asked is not None and asked != stored:
        key = "cli.files.suffix_compressed" if stored else "cli.files.suffix_uncompressed"
        raise UsageError(say(key, lang, name=dest.name, asked=asked, file=_short(obj.key), stored=stored))
    with Scratch(dest, lang) as scratch:
        _room_for(dest.parent, obj.bytes * (EXPANSION if decompress else 1), _short(obj.key), lang)
        temp, handle = scratch.file()
        with handle:
            if decompress:
                fetched, written = download_decompressed(s3, bucket, slot, obj, handle, out=out)
            else:
                fetched = download_raw(s3, bucket, slot, obj, handle, out=out)
                written = fetched.bytes
        _place_file(temp, dest, lang)
    engine = obj.engine or cli.config.dump.engine
    stored_as = None if decompress else stored
    steps = next_steps(engine, cli.config.dump.db_host, _db_name(obj), dest, stored_as, lang)
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


def _human(size: int, language: str = "en") -> str:
    """A size for people: bytes up to 1 KiB, then KiB, MiB, GiB (German with a decimal comma)."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            if unit == "bytes":
                return say("cli.files.bytes", language, n=size)
            number = f"{value:.1f}"
            return f"{number.replace('.', ',') if language == 'de' else number} {unit}"
        value /= 1024
    return say("cli.files.bytes", language, n=size)  # pragma: no cover - the loop always returns


def _say_skipped(slot: Slot, out: Output) -> None:
    for folder, why in slot.skipped:
        dump = describe(folder, slot.zone, slot.language)
        out.line(say("cli.files.skipped", slot.language, dump=dump, reason=why), style="yellow")


def _verified_lines(result: dict[str, Any], language: str) -> list[str]:
    return [
        "  "
        + say("cli.files.verified", language, file=_short(o["key"]), bytes=o["bytes"], sha256=o["sha256"])
        for o in result["objects"]
    ]


def _from_line(result: dict[str, Any], zone: str, language: str) -> str:
    when = datetime.fromisoformat(result["time"])
    stamp = result["slot"].rstrip("/").rsplit("/", 1)[-1]
    dump = say("cli.files.dump_of", language, when=f"{when:%d.%m.%Y %H:%M}", stamp=stamp)
    return "  " + say("cli.files.from_dump", language, dump=dump, source=result["source"], zone=zone)


def _print_files(result: dict[str, Any], zone: str, out: Output, language: str = "en") -> None:
    count = result["files"]
    under = say("cli.files.under", language, path=result["path"]) if result["path"] else ""
    out.line(
        say(
            "cli.files.restored_one" if count == 1 else "cli.files.restored_many",
            language,
            count=count,
            size=_human(result["bytes"], language),
            under=under,
            to=result["to"],
        ),
        style="green",
    )
    out.line(_from_line(result, zone, language))
    for line in _verified_lines(result, language):
        out.line(line)
    refused = result["refused"]
    if refused:
        shown = ", ".join(f"{r['path']} ({r['reason']})" for r in refused[:SHOWN_REFUSED])
        more = (
            say("cli.files.and_more", language, n=len(refused) - SHOWN_REFUSED)
            if len(refused) > SHOWN_REFUSED
            else ""
        )
        out.line(say("cli.files.not_restored", language, shown=shown, more=more), style="yellow")


def _print_dump(result: dict[str, Any], zone: str, out: Output, language: str = "en") -> None:
    size = _human(result["bytes_written"], language)
    what = {"db": result["db"], "size": size, "to": result["to"]}
    if result["decompressed"]:
        wrote = say("cli.files.wrote_sql", language, **what)
    else:
        wrote = say("cli.files.wrote_stored", language, compression=result["compression"], **what)
    out.line(wrote, style="green")
    out.line(_from_line(result, zone, language))
    for line in _verified_lines(result, language):
        out.line(line)
    if result["inconsistent_tables"]:
        tables = ", ".join(result["inconsistent_tables"])
        out.line(say("cli.files.inconsistent", language, tables=tables), style="yellow")
    out.line(say("cli.files.next", language))
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
        from_region: FromRegion = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Files from a night's dump into a new folder, verified against the manifest before anything lands."""
        cli: Cli = ctx.obj
        cli.from_region(from_region)
        lang = cli.language
        wanted_day = parse_day(day, lang)
        prefix = parse_member_path(path, lang)
        dest = new_folder(to, lang)
        out = Output(as_json)
        result = restore_files(cli, wanted_day, source, prefix, dest, out=out)
        if as_json:
            out.json(result)
        else:
            _print_files(result, cli.config.timezone, out, lang)

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
        from_region: FromRegion = None,
        as_json: JsonFlag = False,
    ) -> None:
        """The database dump of a night into a new file, verified against the manifest before it lands."""
        cli: Cli = ctx.obj
        cli.from_region(from_region)
        lang = cli.language
        wanted_day = parse_day(day, lang)
        dest = new_file(to, lang)
        out = Output(as_json)
        result = restore_dump(cli, wanted_day, source, db, dest, out=out)
        if as_json:
            out.json(result)
        else:
            _print_dump(result, cli.config.timezone, out, lang)

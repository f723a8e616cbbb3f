"""The weekly spot restore: pick a recent dump, stream every object back, prove it is restorable.

For each object in the manifest: read it in chunks (never whole into memory), recompute SHA-256 and
size, decompress it as a stream (gzip with zlib; zstd with ``compression.zstd`` on Python 3.14, or the
``zstandard`` package when present), list the tar (``files``) or look for the engine's completion line
at the end of the SQL (``db``). The outcome is written once, as a JSON record named after the run's
scheduled time, ``reports/restore-tests/<YYYYMMDDTHHMMZ>.json``, for the weekly report. A repeated run
for the same scheduled time finds that record and returns it instead of testing (and writing) again.
"""

from __future__ import annotations

import hashlib
import importlib
import secrets
import tarfile
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, Final, cast

from botocore.exceptions import ClientError

from lambdas.common.aws.dumps import inspect_dump
from lambdas.common.aws.errors import error_code
from lambdas.common.aws.records import read_record, write_record_once
from lambdas.common.contracts import restore_test_record_key
from lambdas.common.manifest import (
    KIND_DB,
    KIND_FILES,
    DumpFolder,
    Manifest,
    ManifestObject,
    days_back,
    list_dump_day,
    list_sources,
)
from lambdas.common.observability import logger
from lambdas.common.settings import RestoreTestSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

WINDOW: Final = timedelta(days=7)
CHUNK: Final = 1024 * 1024  # bytes read from S3 at a time
OUT_LIMIT: Final = 4 * 1024 * 1024  # at most this much decompressed output per step
TAIL: Final = 4096  # bytes of the decompressed end kept to find a dump's completion line

COMPLETION_LINES: Final = {
    "mysql": "-- Dump completed",
    "mariadb": "-- Dump completed",
    "postgres": "-- PostgreSQL database dump complete",
    "postgresql": "-- PostgreSQL database dump complete",
}


class ContentError(Exception):
    """The content of an object is not what a restorable dump looks like."""


class _Decoder:
    name = "plain"

    def feed(self, data: bytes) -> Iterator[bytes]:
        yield data

    def finish(self) -> None:
        return None


class _Gzip(_Decoder):
    name = "gzip"

    def __init__(self) -> None:
        self._d = zlib.decompressobj(wbits=31)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._d.eof:  # gzip allows concatenated members
                self._d = zlib.decompressobj(wbits=31)
            try:
                out = self._d.decompress(data, OUT_LIMIT)
            except zlib.error as err:
                raise ContentError(f"is not valid gzip ({err})") from None
            data = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
            if out:
                yield out

    def finish(self) -> None:
        if not self._d.eof:
            raise ContentError("ends in the middle of its gzip stream (truncated)")


class _Zstd(_Decoder):
    name = "zstd"

    def __init__(self, module: Any, stdlib: bool) -> None:
        self._module, self._stdlib = module, stdlib
        self._d = self._new()

    def _new(self) -> Any:
        if self._stdlib:
            return self._module.ZstdDecompressor()
        return self._module.ZstdDecompressor().decompressobj()

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if getattr(self._d, "eof", False):  # zstd allows concatenated frames
                self._d = self._new()
            try:
                out = self._d.decompress(data)
            except Exception as err:  # each zstd module has its own error class
                raise ContentError(f"is not valid zstd ({err})") from None
            data = self._d.unused_data if getattr(self._d, "eof", False) else b""
            if out:
                yield bytes(out)

    def finish(self) -> None:
        if not getattr(self._d, "eof", True):
            raise ContentError("ends in the middle of its zstd stream (truncated)")


def zstd_module() -> tuple[Any, bool] | None:
    """(module, is_stdlib) for zstd, or None when this Python cannot decompress zstd."""
    for name, stdlib in (("compression.zstd", True), ("zstandard", False)):
        try:
            return importlib.import_module(name), stdlib
        except ImportError:
            continue
    return None


def decoder_for(key: str) -> _Decoder:
    if key.endswith(".gz"):
        return _Gzip()
    if key.endswith(".zst"):
        found = zstd_module()
        if found is None:
            raise ContentError(
                "cannot check zstd: this Python has neither compression.zstd (3.14+) nor the zstandard package"
            )
        return _Zstd(*found)
    raise ContentError("has an unknown compression (expected .gz or .zst)")


class CheckedStream:
    """A read-only file object over decompressed content that hashes the raw bytes on the way."""

    def __init__(self, chunks: Iterable[bytes], decoder: _Decoder) -> None:
        self.sha256 = hashlib.sha256()
        self.raw_bytes = 0
        self.out_bytes = 0
        self.tail = b""
        self._raw = iter(chunks)
        self._decoder = decoder
        self._pieces = self._decode()
        self._buffer = bytearray()
        self._done = False

    def _next_raw(self) -> bytes | None:
        raw = next(self._raw, None)
        if raw is not None:
            self.sha256.update(raw)
            self.raw_bytes += len(raw)
        return raw

    def _decode(self) -> Iterator[bytes]:
        while (raw := self._next_raw()) is not None:
            yield from self._decoder.feed(raw)
        self._decoder.finish()

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            piece = next(self._pieces, None)
            if piece is None:
                self._done = True
                break
            self._buffer += piece
            self.out_bytes += len(piece)
            self.tail = (self.tail + piece)[-TAIL:]
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def drain(self) -> None:
        """Decode to the end (so truncation shows), keeping only the tail."""
        while self.read(CHUNK):
            pass

    def drain_raw(self) -> None:
        """Finish the checksum without decoding (after a content error)."""
        while self._next_raw() is not None:
            pass


@dataclass
class ObjectResult:
    key: str
    kind: str
    expected_bytes: int
    expected_sha256: str
    bytes: int | None = None
    sha256: str | None = None
    compression: str | None = None
    tar_members: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "ok": self.ok,
            "bytes": self.bytes,
            "expected_bytes": self.expected_bytes,
            "sha256": self.sha256,
            "expected_sha256": self.expected_sha256,
            "compression": self.compression,
            "tar_members": self.tar_members,
            "problems": list(self.problems),
        }


def _check_content(obj: ManifestObject, stream: CheckedStream, result: ObjectResult) -> None:
    if obj.kind == KIND_FILES:
        members = 0
        with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|") as tar:
            for _member in tar:
                members += 1
        stream.drain()
        result.tar_members = members
        if members == 0:
            raise ContentError("is a tar archive without any file")
    elif obj.kind == KIND_DB:
        stream.drain()
        text = stream.tail.decode("utf-8", errors="replace")
        if obj.engine is None:
            wanted = sorted(set(COMPLETION_LINES.values()))
        elif obj.engine.lower() in COMPLETION_LINES:
            wanted = [COMPLETION_LINES[obj.engine.lower()]]
        else:
            raise ContentError(f"is a dump of engine {obj.engine!r}, whose completion line is unknown")
        if not any(line in text for line in wanted):
            raise ContentError(
                "does not end with " + " or ".join(repr(w) for w in wanted) + " (the dump stopped early)"
            )


def check_object(s3: S3Client, bucket: str, obj: ManifestObject) -> ObjectResult:
    short = obj.key.rsplit("/", 1)[-1]
    result = ObjectResult(obj.key, obj.kind, obj.bytes, obj.sha256)
    try:
        body = s3.get_object(Bucket=bucket, Key=obj.key)["Body"]
    except ClientError as err:
        result.problems.append(
            f"{short} could not be downloaded ({error_code(err) or 'Error'}); it is missing or unreadable."
        )
        return result
    try:
        decoder = decoder_for(obj.key)
    except ContentError as err:
        decoder = _Decoder()
        result.problems.append(f"{short} {err}.")
    result.compression = decoder.name
    stream = CheckedStream(body.iter_chunks(CHUNK), decoder)
    if result.ok:
        try:
            _check_content(obj, stream, result)
        except ContentError as err:
            result.problems.append(f"{short} {err}.")
        except (tarfile.TarError, EOFError) as err:
            result.problems.append(f"{short} is not a readable tar archive ({err}).")
    stream.drain_raw()
    body.close()
    result.bytes, result.sha256 = stream.raw_bytes, stream.sha256.hexdigest()
    if result.bytes != obj.bytes:
        result.problems.append(f"{short} has {result.bytes} bytes, the manifest says {obj.bytes}.")
    if result.sha256 != obj.sha256:
        result.problems.append(
            f"{short}: SHA-256 {result.sha256} does not match the manifest's {obj.sha256} "
            "(the object was changed or replaced after the dump)."
        )
    return result


@dataclass
class RestoreTest:
    scheduled: datetime  # names the record
    started: datetime
    pick: str
    folder: DumpFolder | None = None
    manifest: Manifest | None = None
    objects: list[ObjectResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems and all(o.ok for o in self.objects)

    def all_problems(self) -> list[str]:
        return [*self.problems, *(p for o in self.objects for p in o.problems)]

    def as_dict(self) -> dict[str, Any]:
        finished = self.started + timedelta(seconds=self.duration_seconds)
        return {
            "version": 1,
            "scheduled_time": f"{self.scheduled:%Y-%m-%dT%H:%M:%SZ}",
            "started_at": f"{self.started:%Y-%m-%dT%H:%M:%SZ}",
            "finished_at": f"{finished:%Y-%m-%dT%H:%M:%SZ}",
            "duration_seconds": round(self.duration_seconds, 3),
            "passed": self.passed,
            "pick": self.pick,
            "source": self.folder.source if self.folder else None,
            "dump": self.folder.prefix if self.folder else None,
            "dump_time": f"{self.folder.when:%Y-%m-%dT%H:%M:%SZ}" if self.folder else None,
            "dump_finished_at": f"{self.manifest.finished_at:%Y-%m-%dT%H:%M:%SZ}" if self.manifest else None,
            "objects": [o.as_dict() for o in self.objects],
            "problems": self.all_problems(),
        }


@dataclass(frozen=True)
class RestoreTestResult:
    """The record of this scheduled time: written by this run, or found from an earlier run of it."""

    key: str
    record: dict[str, Any]
    written: bool  # False: an earlier run for the same scheduled time had written it

    @property
    def passed(self) -> bool:
        return bool(self.record.get("passed"))

    @property
    def duration_seconds(self) -> float:
        return float(self.record.get("duration_seconds", 0.0))

    def as_dict(self, bucket: str) -> dict[str, Any]:
        return {**self.record, "record": f"s3://{bucket}/{self.key}", "repeated": not self.written}

    def raise_if_failed(self) -> None:
        if not self.passed:
            earlier = "" if self.written else f" (recorded by an earlier run for this time: {self.key})"
            raise RestoreTestFailed(
                "Restore test failed" + earlier + ": " + " ".join(self.record.get("problems", []))
            )


class RestoreTestFailed(RuntimeError):
    """The restore test found a problem; raised after the record and the metrics were written."""


def recent_dumps(s3: S3Client, bucket: str, now: datetime, window: timedelta = WINDOW) -> list[DumpFolder]:
    """Dump folders with a manifest from the last ``window``, all sources, newest first."""
    since = now - window
    days = window.days + 1
    found = [
        folder
        for source in list_sources(s3, bucket)
        for day in days_back(now, days)
        for folder in list_dump_day(s3, bucket, source, day)
        if folder.has_manifest and since <= folder.when <= now
    ]
    return sorted(found, key=lambda f: (f.when, f.source), reverse=True)


def _reported_complete(s3: S3Client, bucket: str, folder: DumpFolder) -> Manifest | None:
    """The manifest of a dump that reports itself complete (status ok), else None.

    Deliberately not the state table's "usable": a dump whose objects are short or missing is exactly
    what the restore test is there to catch, so it is picked and its objects are checked one by one.
    """
    _, manifest = inspect_dump(s3, bucket, folder)
    if manifest is None or not manifest.ok:
        logger.info("skipping a dump that does not report itself complete", extra={"dump": folder.prefix})
        return None
    return manifest


def pick_dump(s3: S3Client, bucket: str, now: datetime, pick: str) -> tuple[DumpFolder, Manifest] | None:
    """The newest dump whose manifest says ok, or a random one of them (``pick=random``)."""
    folders = recent_dumps(s3, bucket, now)
    if pick == "newest":
        for folder in folders:
            manifest = _reported_complete(s3, bucket, folder)
            if manifest is not None:
                return folder, manifest
        return None
    candidates = [(f, m) for f in folders if (m := _reported_complete(s3, bucket, f)) is not None]
    return secrets.choice(candidates) if candidates else None


def check_one_dump(s3: S3Client, bucket: str, when: datetime, pick: str) -> RestoreTest:
    """Pick a dump of the week before ``when`` and check every object of it."""
    clock = time.monotonic()
    test = RestoreTest(scheduled=when, started=datetime.now(UTC).replace(microsecond=0), pick=pick)
    chosen = pick_dump(s3, bucket, when, pick)
    if chosen is None:
        test.problems.append(
            f"No successful dump (with manifest.json, status ok) in the last {WINDOW.days} days in "
            f"s3://{bucket}/dumps/: there is nothing to restore from."
        )
    else:
        test.folder, test.manifest = chosen
        logger.info("restore test picked a dump", extra={"dump": test.folder.prefix, "pick": pick})
        for obj in test.manifest.objects:
            test.objects.append(check_object(s3, bucket, obj))
    test.duration_seconds = time.monotonic() - clock
    return test


def run_restore_test(s3: S3Client, settings: RestoreTestSettings, when: datetime) -> RestoreTestResult:
    """The restore test of scheduled time ``when``, run and recorded once."""
    key = restore_test_record_key(when)
    earlier = read_record(s3, settings.bucket, key)
    if earlier is not None:
        logger.info("restore test of this scheduled time was done already", extra={"record": key})
        return RestoreTestResult(key, earlier, written=False)
    record = check_one_dump(s3, settings.bucket, when, settings.pick).as_dict()
    if not write_record_once(s3, settings.bucket, key, record):  # a run that raced this one wrote first
        raced = read_record(s3, settings.bucket, key)
        return RestoreTestResult(key, raced or record, written=False)
    return RestoreTestResult(key, record, written=True)

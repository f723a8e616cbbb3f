"""Dump manifests and where dumps live (DESIGN.md, Contracts).

A dump is a folder ``dumps/<source>/<YYYY>/<MM>/<DD>/<YYYYMMDDTHHMMZ>/`` holding its objects and, written
last, ``manifest.json``::

    {"version": 1, "source": "i-0abc...", "started_at": "...Z", "finished_at": "...Z", "status": "ok",
     "objects": [{"key": "dumps/.../files.tar.gz", "kind": "files", "bytes": 123, "sha256": "..."},
                 {"key": "dumps/.../db-school.sql.gz", "kind": "db", "engine": "mysql", ...}],
     "inconsistent_tables": ["school.sessions"]}

``inconsistent_tables`` (optional) names MySQL tables that ``--single-transaction`` does not cover
(MyISAM, Aria, ...): the dump is usable, and verify and the weekly mail say so.

:func:`parse_manifest` validates one and raises :class:`ManifestError` with a sentence that names the
manifest and the field. :func:`list_dump_day` lists one day of one source with a single
``list_objects_v2`` (plus pages), so callers check object sizes without a HEAD per object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from lambdas.common.contracts import DUMP_PREFIX, dump_day_prefix, parse_report_stamp, parse_time

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MANIFEST_NAME: Final = "manifest.json"
MANIFEST_VERSION: Final = 1
STATUS_OK: Final = "ok"
KIND_FILES: Final = "files"
KIND_DB: Final = "db"
OBJECT_KINDS: Final = (KIND_FILES, KIND_DB)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FOLDER = re.compile(
    r"^(?P<prefix>.+)/(?P<source>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<stamp>\d{8}T\d{4}Z)/$"
)


class ManifestError(ValueError):
    """A manifest is not valid JSON or does not follow the contract."""


@dataclass(frozen=True)
class ManifestObject:
    key: str
    kind: str  # files | db
    bytes: int
    sha256: str
    engine: str | None = None


@dataclass(frozen=True)
class Manifest:
    version: int
    source: str
    started_at: datetime
    finished_at: datetime
    status: str
    objects: tuple[ManifestObject, ...]
    # MySQL tables that --single-transaction does not cover (MyISAM, Aria, ...): dumped at a slightly
    # different moment than the rest. Shown to the admin; not a failure.
    inconsistent_tables: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


def _field(data: dict[str, Any], name: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if name not in data:
        raise ManifestError(f"{where}: field {name!r} is missing")
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ManifestError(f"{where}: field {name!r}={value!r} has the wrong type")
    return value


def _time(data: dict[str, Any], name: str, where: str) -> datetime:
    raw = _field(data, name, where, str)
    try:
        return parse_time(raw)
    except ValueError:
        raise ManifestError(
            f"{where}: field {name!r}={raw!r} is not a UTC time like 2026-11-27T01:04:41Z"
        ) from None


def _object(item: Any, index: int, where: str, folder: str | None) -> ManifestObject:
    at = f"{where}: objects[{index}]"
    if not isinstance(item, dict):
        raise ManifestError(f"{at} is not a JSON object")
    key = _field(item, "key", at, str)
    kind = _field(item, "kind", at, str)
    if kind not in OBJECT_KINDS:
        raise ManifestError(f"{at}: kind {kind!r} is not one of {', '.join(OBJECT_KINDS)}")
    size = _field(item, "bytes", at, int)
    if size < 0:
        raise ManifestError(f"{at}: bytes={size} is negative")
    digest = _field(item, "sha256", at, str)
    if not _SHA256.match(digest):
        raise ManifestError(f"{at}: sha256 {digest!r} is not 64 lowercase hex digits")
    engine = item.get("engine")
    if engine is not None and (not isinstance(engine, str) or not engine):
        raise ManifestError(f"{at}: engine {engine!r} must be a name like mysql or postgres")
    if folder is not None and (not key.startswith(folder) or "/" in key[len(folder) :]):
        raise ManifestError(f"{at}: key {key!r} is not in the dump's folder {folder}")
    return ManifestObject(key=key, kind=kind, bytes=size, sha256=digest, engine=engine)


def parse_manifest(raw: bytes | str, where: str = MANIFEST_NAME, folder: str | None = None) -> Manifest:
    """Parse and validate; ``where`` (usually the manifest's key) prefixes every error message.

    With ``folder`` every object key must lie directly in that folder (a manifest cannot vouch for
    objects elsewhere).
    """
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ManifestError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: must be a JSON object, got {type(data).__name__}")
    version = _field(data, "version", where, int)
    if version != MANIFEST_VERSION:
        raise ManifestError(f"{where}: version {version} is not supported (expected {MANIFEST_VERSION})")
    source = _field(data, "source", where, str)
    if not source:
        raise ManifestError(f"{where}: field 'source' is empty")
    started = _time(data, "started_at", where)
    finished = _time(data, "finished_at", where)
    if finished < started:
        raise ManifestError(f"{where}: finished_at {finished:%Y-%m-%dT%H:%M:%SZ} is before started_at")
    status = _field(data, "status", where, str)
    objects = _field(data, "objects", where, list)
    parsed = tuple(_object(item, i, where, folder) for i, item in enumerate(objects))
    keys = [o.key for o in parsed]
    if len(set(keys)) != len(keys):
        raise ManifestError(f"{where}: an object key is listed twice")
    if status == STATUS_OK and not parsed:
        raise ManifestError(f"{where}: status is ok but no objects are listed")
    inconsistent = data.get("inconsistent_tables", [])
    if not isinstance(inconsistent, list) or not all(isinstance(t, str) and t for t in inconsistent):
        raise ManifestError(f"{where}: inconsistent_tables={inconsistent!r} must be a list of table names")
    return Manifest(
        version=version,
        source=source,
        started_at=started,
        finished_at=finished,
        status=status,
        objects=parsed,
        inconsistent_tables=tuple(inconsistent),
    )


@dataclass(frozen=True)
class DumpFolder:
    """One dump folder as listed: its objects' sizes, and whether the manifest is there."""

    source: str
    when: datetime  # from the folder name (the dump's scheduled time, UTC)
    prefix: str  # ends with "/"
    sizes: dict[str, int] = field(default_factory=dict, compare=False)  # key -> bytes

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}{MANIFEST_NAME}"

    @property
    def has_manifest(self) -> bool:
        return self.manifest_key in self.sizes


def parse_dump_folder(prefix: str) -> tuple[str, datetime] | None:
    """(source, time) of ``dumps/<source>/<YYYY>/<MM>/<DD>/<YYYYMMDDTHHMMZ>/``, None for other keys."""
    match = _FOLDER.match(prefix)
    if not match:
        return None
    try:
        when = parse_report_stamp(match["stamp"])
    except ValueError:
        return None
    if (match["y"], match["m"], match["d"]) != (f"{when:%Y}", f"{when:%m}", f"{when:%d}"):
        return None
    return match["source"], when


def list_dump_day(s3: S3Client, bucket: str, source: str, day: datetime) -> list[DumpFolder]:
    """The dump folders of one source on one UTC day, newest first (one listing, paginated)."""
    folders: dict[str, DumpFolder] = {}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=dump_day_prefix(source, day))
    for page in pages:
        for obj in page.get("Contents", []):
            key = obj["Key"]
            folder_prefix = key.rsplit("/", 1)[0] + "/"
            parsed = parse_dump_folder(folder_prefix)
            if parsed is None or parsed[0] != source:
                continue
            folder = folders.get(folder_prefix)
            if folder is None:
                folder = folders[folder_prefix] = DumpFolder(source, parsed[1], folder_prefix)
            folder.sizes[key] = int(obj.get("Size", 0))
    return sorted(folders.values(), key=lambda f: f.when, reverse=True)


def days_back(now: datetime, days: int) -> Iterator[datetime]:
    """``now`` and the ``days - 1`` UTC days before it, newest first."""
    for offset in range(days):
        yield now.astimezone(UTC) - timedelta(days=offset)


def list_sources(s3: S3Client, bucket: str, prefix: str = DUMP_PREFIX) -> list[str]:
    """The sources that have a folder under ``dumps/``."""
    found: list[str] = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/", Delimiter="/")
    for page in pages:
        for common in page.get("CommonPrefixes", []):
            name = common.get("Prefix", "")[len(prefix) + 1 :].rstrip("/")
            if name:
                found.append(name)
    return sorted(found)


def read_manifest(s3: S3Client, bucket: str, folder: DumpFolder) -> Manifest:
    """Fetch and validate the folder's manifest; its source must be the folder's source."""
    body = s3.get_object(Bucket=bucket, Key=folder.manifest_key)["Body"].read()
    manifest = parse_manifest(body, where=folder.manifest_key, folder=folder.prefix)
    if manifest.source != folder.source:
        raise ManifestError(
            f"{folder.manifest_key}: source {manifest.source!r} does not match the folder's {folder.source!r}"
        )
    return manifest

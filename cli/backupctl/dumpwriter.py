"""A dump slot written the way ``schoolbackup-dump.sh`` writes it, for the rehearsal and the tests.

The objects first, each created with ``If-None-Match: *`` (the bucket policy requires it of the server),
then ``manifest.json`` listing every object's key, size and SHA-256 (DESIGN.md, Contracts).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lambdas.common.contracts import dump_folder

# How long the simulated dump takes: the manifest's finished_at is the dump's time for verify.
TOOK = timedelta(minutes=4, seconds=38)


@dataclass(frozen=True)
class WrittenDump:
    folder: str
    keys: dict[str, str]  # object name (files.tar.gz, db-school.sql.gz) -> key
    manifest: dict[str, Any]


def tar_gz(files: Mapping[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def write_dump_slot(
    s3: Any,
    bucket: str,
    source: str,
    when: datetime,
    contents: Mapping[str, bytes],
    *,
    engine: str = "mysql",
    status: str = "ok",
    manifest: bool = True,
    inconsistent: Sequence[str] = (),
    create_only: bool = True,
) -> WrittenDump:
    """``contents`` maps object names to bytes; an object named ``files...`` is kind files, others db."""
    folder = dump_folder(source, when)
    condition = {"IfNoneMatch": "*"} if create_only else {}
    objects, keys = [], {}
    for name, data in contents.items():
        key = keys[name] = folder + name
        s3.put_object(Bucket=bucket, Key=key, Body=data, **condition)
        entry: dict[str, Any] = {
            "key": key,
            "kind": "files" if name.startswith("files") else "db",
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if entry["kind"] == "db":
            entry["engine"] = engine
        objects.append(entry)
    doc: dict[str, Any] = {
        "version": 1,
        "source": source,
        "started_at": f"{when:%Y-%m-%dT%H:%M:03Z}",
        "finished_at": f"{when + TOOK:%Y-%m-%dT%H:%M:%SZ}",
        "status": status,
        "objects": objects,
    }
    if inconsistent:
        doc["inconsistent_tables"] = list(inconsistent)
    if manifest:
        s3.put_object(Bucket=bucket, Key=folder + "manifest.json", Body=json.dumps(doc).encode(), **condition)
    return WrittenDump(folder, keys, doc)

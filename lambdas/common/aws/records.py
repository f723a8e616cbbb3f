"""The JSON records the jobs write to the bucket (reports/...): read one, write one exactly once."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdas.common.aws.errors import error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def read_record(s3: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    """The record, or None when there is none.

    Asked with a listing whose prefix is the key (the roles may list only their record prefixes), not by
    a GetObject that might fail: S3 answers a GetObject of a missing key with 404 only to a caller whose
    ListBucket permission covers the request, and 403 otherwise, which would read as "cannot tell".
    """
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=10).get("Contents", [])
    if not any(obj["Key"] == key for obj in listed):
        return None
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if error_code(err) in ("NoSuchKey", "404"):  # removed between the listing and the read
            return None
        raise
    record: dict[str, Any] = json.loads(body)
    return record


def write_record_once(s3: S3Client, bucket: str, key: str, record: dict[str, Any]) -> bool:
    """Create the record with ``If-None-Match: *``; False when another run created it first."""
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(record, indent=2).encode(),
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except ClientError as err:
        if error_code(err) == "PreconditionFailed":
            return False
        raise
    return True


def newest_record(
    s3: S3Client, bucket: str, prefix: str, upto: str | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The newest ``<prefix>/<name>.json`` (names sort by time) and its content; None when there is none.

    ``upto``: the newest key not after it (the record of a moment ``now``, for a report written later).
    """
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".json")]
    keys = [k for k in keys if upto is None or k <= upto]
    if not keys:
        return None
    key = max(keys)
    record: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return key, record

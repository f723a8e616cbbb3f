"""A dump folder read from S3 and judged by the state table (verify, restore_test, backupctl)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from lambdas.common.aws.errors import error_code
from lambdas.common.aws.states import Reading, dump_state
from lambdas.common.manifest import DumpFolder, Manifest, ManifestError, read_manifest
from lambdas.common.messages import msg

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def inspect_dump(s3: S3Client, bucket: str, folder: DumpFolder) -> tuple[Reading, Manifest | None]:
    """The folder's state and its manifest (None when it has none, or none that can be read)."""
    if not folder.has_manifest:
        return dump_state(folder, None), None
    try:
        manifest = read_manifest(s3, bucket, folder)
    except ManifestError as err:
        return dump_state(folder, None, msg("state.manifest_invalid", error=str(err))), None
    except ClientError as err:
        return dump_state(folder, None, msg("state.manifest_error", code=error_code(err) or "Error")), None
    return dump_state(folder, manifest), manifest

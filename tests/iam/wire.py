"""AWS requests as they cross the wire (what the dump script sends), turned into API operations.

The integration tests put a recording proxy between the real dump script and moto's server; each
request it saw is parsed here into (service, operation, params) for the one table in requests.py.
A request this parser does not recognise raises UnmappedOperation: never a silent skip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.iam.requests import UnmappedOperation

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
# S3 request headers that become API parameters (and so IAM condition keys).
_S3_HEADERS = {
    "x-amz-server-side-encryption": "ServerSideEncryption",
    "x-amz-server-side-encryption-aws-kms-key-id": "SSEKMSKeyId",
    "x-amz-server-side-encryption-customer-algorithm": "SSECustomerAlgorithm",
    "if-none-match": "IfNoneMatch",
    "if-match": "IfMatch",
    "x-amz-copy-source": "CopySource",
    "x-amz-object-lock-mode": "ObjectLockMode",
}


@dataclass(frozen=True)
class WireRequest:
    method: str
    target: str  # path and query as sent
    headers: Mapping[str, str]  # lower-case names
    body: bytes  # kept only for small JSON bodies

    @property
    def service(self) -> str:
        match = _SCOPE.search(self.headers.get("authorization", ""))
        if not match:
            raise UnmappedOperation(
                f"{self.method} {self.target}: unsigned request (no SigV4 credential scope)"
            )
        return match["service"]


def operation(request: WireRequest) -> tuple[str, str, dict[str, Any]]:
    """(service, API operation, params) of one request on the wire."""
    service = request.service
    if service == "s3":
        op, params = _s3(request)
        return service, op, params
    target = request.headers.get("x-amz-target", "")
    if target:
        prefix, _, op = target.partition(".")
        body = json.loads(request.body or b"{}")
        if service == "secretsmanager" and prefix == "secretsmanager":
            return service, op, body
    raise UnmappedOperation(f"{service}: {request.method} {request.target} ({target or 'no X-Amz-Target'})")


def _s3(request: WireRequest) -> tuple[str, dict[str, Any]]:
    url = urlsplit(request.target)
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    bucket, _, key = unquote(url.path).lstrip("/").partition("/")
    params: dict[str, Any] = {"Bucket": bucket}
    if key:
        params["Key"] = key
    for header, name in _S3_HEADERS.items():
        if header in request.headers:
            params[name] = request.headers[header]
    m = request.method
    if not key:
        if m == "GET" and query.get("list-type") == "2":
            params.update(
                {k: query[q] for q, k in (("prefix", "Prefix"), ("delimiter", "Delimiter")) if q in query}
            )
            if "max-keys" in query:
                params["MaxKeys"] = int(query["max-keys"])
            return "ListObjectsV2", params
    elif m == "PUT" and "partNumber" in query and "uploadId" in query:
        return "UploadPart", {**params, "PartNumber": int(query["partNumber"]), "UploadId": query["uploadId"]}
    elif m == "PUT" and not query:
        return ("CopyObject" if "CopySource" in params else "PutObject"), params
    elif m == "POST" and "uploads" in query:
        return "CreateMultipartUpload", params
    elif m == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload", {**params, "UploadId": query["uploadId"]}
    elif m == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload", {**params, "UploadId": query["uploadId"]}
    elif m == "DELETE" and not query:
        return "DeleteObject", params
    elif m in ("GET", "HEAD") and not query:
        return ("GetObject" if m == "GET" else "HeadObject"), params
    raise UnmappedOperation(f"s3: {m} {request.target} is not a request the parser knows")

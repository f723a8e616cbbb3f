"""s3put: the dump's S3 client. Write-once uploads from a stream, with nothing on disk.

Run by ``schoolbackup-dump.sh`` on the web server (the SSM document embeds this file next to the
script). Standard library only, Python 3.9+ (Amazon Linux 2023's python3), because the AWS CLI's
``s3 cp`` cannot send ``If-None-Match`` and boto3 is not on the server.

Every object is created with ``If-None-Match: *``, which the bucket policy requires under
``dumps/``: an existing object is never replaced (S3 answers 412; exit status 4). Every body carries
Content-MD5, which S3 requires in a bucket with Object Lock default retention. A stream is hashed
(SHA-256) and counted on the way and sent as a single PutObject when it fits in one part, else as a
multipart upload whose part size grows with the stream (8 MiB, doubling every 1000 parts: no stream
size limit in practice, at most three parts in memory). A failed or interrupted upload is aborted.

Commands (one line on stderr and a non-zero exit status when something fails):
  exists   --bucket B --key K               exit 0 if the object exists, 3 if not (ListObjectsV2 prefix=K)
  put      --bucket B --key K [...] <data   store stdin as one object
  upload   --bucket B --key K --meta F <s   store a stream; write "<sha256> <bytes>" to F at the end
  capacity                                  print the largest stream an upload can take (bytes)
Common options: --region R, --sse-kms-key-id ARN, --metadata k=v,k=v, --content-type T,
--max-part-mib M (default 5120: S3's largest part), --max-parts N (default 10000: S3's limit).

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN when set, else the
instance profile through IMDSv2 (SB_IMDS_ENDPOINT, default http://169.254.169.254), refreshed before
they expire. They live in this process only: never in argv, a file or a child's environment.
Endpoint: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (path-style, for tests) else the regional one.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

PART_SIZE = 8 * 1024 * 1024
PARTS_PER_STEP = 1000  # the part size doubles after every 1000 parts
MAX_PART_SIZE = 5 * 1024**3
MAX_PARTS = 10_000
UPLOAD_THREADS = 2
ATTEMPTS = 6
EXIT_ERROR, EXIT_ABSENT, EXIT_EXISTS = 1, 3, 4
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
_UNRESERVED = "-_.~"
_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class S3Error(Exception):
    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Exists(S3Error):
    """The object exists already (412 Precondition Failed): it is never replaced."""


def part_size(number: int, largest: int = MAX_PART_SIZE) -> int:
    """Size of part ``number`` (1-based): 8 MiB for parts 1-1000, 16 MiB for 1001-2000, ..., at most
    ``largest`` (S3 allows 5 MiB to 5 GiB; an upload keeps up to three parts in memory)."""
    return int(min(PART_SIZE * 2 ** ((number - 1) // PARTS_PER_STEP), largest))


def capacity(largest: int = MAX_PART_SIZE, parts: int = MAX_PARTS) -> int:
    """The largest stream one upload can take with parts of at most ``largest`` bytes."""
    return sum(part_size(n, largest) for n in range(1, parts + 1))


@dataclass
class Credentials:
    access_key: str
    secret_key: str
    token: str = ""
    expires: float = float("inf")  # epoch seconds


class CredentialSource:
    def __init__(self, environ: dict[str, str], imds: str) -> None:
        self.environ = environ
        self.imds = imds.rstrip("/")
        self._current: Credentials | None = None
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._current = None

    def get(self) -> Credentials:
        with self._lock:
            if self._current is None or self._current.expires - time.time() < 300:
                self._current = self._load()
            return self._current

    def _load(self) -> Credentials:
        env = self.environ
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            return Credentials(
                env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN", "")
            )
        return self._from_instance_profile()

    def _imds(self, method: str, path: str, headers: dict[str, str]) -> str:
        url = urllib.parse.urlsplit(self.imds)
        conn = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=5)
        try:
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            body = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        if response.status != 200:
            raise S3Error(f"IMDSv2 {path} answered {response.status}", response.status)
        return body

    def _from_instance_profile(self) -> Credentials:
        last: Exception | None = None
        for attempt in range(3):
            try:
                token = self._imds(
                    "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "300"}
                )
                headers = {"X-aws-ec2-metadata-token": token.strip()}
                base = "/latest/meta-data/iam/security-credentials/"
                role = self._imds("GET", base, headers).split("\n")[0].strip()
                if not role:
                    raise S3Error("the instance has no IAM role (instance profile)")
                data = json.loads(self._imds("GET", base + role, headers))
                expires = datetime.datetime.strptime(data["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
                return Credentials(
                    data["AccessKeyId"],
                    data["SecretAccessKey"],
                    data.get("Token", ""),
                    expires.replace(tzinfo=datetime.timezone.utc).timestamp(),
                )
            except (OSError, ValueError, KeyError, S3Error) as err:
                last = err
                time.sleep(0.5 * (attempt + 1))
        raise S3Error(
            "no AWS credentials: AWS_ACCESS_KEY_ID is not set and the instance profile could not be read "
            f"through IMDSv2 ({last})"
        )


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe=_UNRESERVED)


def sign(
    *,
    method: str,
    host: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    payload_hash: str,
    credentials: Credentials,
    region: str,
    now: datetime.datetime,
) -> dict[str, str]:
    """The request headers with AWS Signature Version 4 for S3 added (Authorization, x-amz-date, ...)."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): str(v).strip() for k, v in headers.items()}
    signed["host"] = host
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_hash
    if credentials.token:
        signed["x-amz-security-token"] = credentials.token
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            "/".join(_quote(segment) for segment in path.split("/")),
            "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query.items())),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + credentials.secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {k: v for k, v in signed.items() if k != "host"}
    out["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out


def content_md5(body: bytes) -> str:
    """The Content-MD5 header. S3 requires it (or an x-amz-checksum-* header) on every PutObject and
    UploadPart into a bucket with Object Lock default retention, as the backup bucket has; it also lets
    S3 refuse a body damaged on the way. Not a security use of MD5 (FIPS-mode servers allow it so)."""
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Client:
    """Just the S3 calls the dump makes, with retries for throttling and transient failures."""

    def __init__(self, bucket: str, region: str, credentials: CredentialSource, endpoint: str = "") -> None:
        self.bucket = bucket
        self.region = region
        self.credentials = credentials
        if endpoint:  # path-style, e.g. a test endpoint
            url = urllib.parse.urlsplit(endpoint)
            self.scheme, self.netloc, self.prefix = url.scheme, url.netloc, f"/{bucket}"
        else:
            suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
            self.scheme, self.netloc, self.prefix = "https", f"{bucket}.s3.{region}.{suffix}", ""
        self._local = threading.local()
        self._tls = ssl.create_default_context()

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.scheme == "https":
                conn = http.client.HTTPSConnection(self.netloc, timeout=120, context=self._tls)
            else:
                conn = http.client.HTTPConnection(self.netloc, timeout=120)
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def request(
        self,
        method: str,
        key: str,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        what: str = "",
    ) -> Response:
        """One S3 call; transient failures are retried, the rest raise S3Error (Exists for 412)."""
        query = query or {}
        path = f"{self.prefix}/{key}" if key else f"{self.prefix}/"
        target = "/".join(_quote(s) for s in path.split("/"))
        if query:
            target += "?" + "&".join(
                f"{_quote(k)}={_quote(v)}" if v != "" else _quote(k) for k, v in query.items()
            )
        what = what or f"{method} {self.where(key)}"
        delay = 0.5
        for attempt in range(1, ATTEMPTS + 1):
            sent = {**(headers or {}), "content-length": str(len(body))}
            signed = sign(
                method=method,
                host=self.netloc,
                path=path,
                query=query,
                headers=sent,
                payload_hash="UNSIGNED-PAYLOAD",
                credentials=self.credentials.get(),
                region=self.region,
                now=datetime.datetime.now(datetime.timezone.utc),
            )
            try:
                conn = self._connection()
                conn.request(method, target, body=body or None, headers=signed)
                raw = conn.getresponse()
                response = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
            except (OSError, http.client.HTTPException) as err:
                self._drop_connection()
                if attempt == ATTEMPTS:
                    raise S3Error(f"{what}: {type(err).__name__}: {err} (after {attempt} attempts)") from err
            else:
                error = _error(response)
                if error is None:
                    return response
                code, message = error
                if response.status == 412:
                    raise Exists(
                        f"{self.where(key)} exists already; stored objects are never replaced", 412, code
                    )
                if code == "ExpiredToken":
                    self.credentials.invalidate()
                retry = response.status >= 500 or response.status in (408, 429) or code in _RETRY_CODES
                if not retry or attempt == ATTEMPTS:
                    tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                    raise S3Error(
                        f"{what}: {response.status} {code}: {message}{tries}", response.status, code
                    )
            time.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not security
            delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def exists(self, key: str) -> bool:
        response = self.request(
            "GET",
            "",
            query={"list-type": "2", "prefix": key, "max-keys": "1"},
            what=f"list {self.where(key)}",
        )
        root = ET.fromstring(response.body)  # noqa: S314 - S3's own answer
        return any(el.text == key for el in root.iter(f"{_S3_NS}Key")) or any(
            el.text == key for el in root.iter("Key")
        )

    def put(self, key: str, body: bytes, headers: dict[str, str]) -> None:
        self.request(
            "PUT", key, headers={**headers, "if-none-match": "*", "content-md5": content_md5(body)}, body=body
        )

    def create_upload(self, key: str, headers: dict[str, str]) -> str:
        response = self.request(
            "POST", key, query={"uploads": ""}, headers=headers, what=f"start upload of {self.where(key)}"
        )
        root = ET.fromstring(response.body)  # noqa: S314 - S3's own answer
        upload_id = root.findtext(f"{_S3_NS}UploadId") or root.findtext("UploadId")
        if not upload_id:
            raise S3Error(f"start upload of {self.where(key)}: no UploadId in the answer")
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> str:
        response = self.request(
            "PUT",
            key,
            query={"partNumber": str(number), "uploadId": upload_id},
            headers={"content-md5": content_md5(body)},
            body=body,
            what=f"part {number} of {self.where(key)}",
        )
        etag = response.headers.get("etag")
        if not etag:
            raise S3Error(f"part {number} of {self.where(key)}: no ETag in the answer")
        return etag

    def complete_upload(self, key: str, upload_id: str, etags: list[str]) -> None:
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in enumerate(etags, 1)
        )
        body = f'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{parts}</CompleteMultipartUpload>'
        self.request(
            "POST",
            key,
            query={"uploadId": upload_id},
            headers={"if-none-match": "*", "content-type": "application/xml"},
            body=body.encode(),
            what=f"complete upload of {self.where(key)}",
        )

    def abort_upload(self, key: str, upload_id: str) -> None:
        self.request("DELETE", key, query={"uploadId": upload_id}, what=f"abort upload of {self.where(key)}")


# 409 ConditionalRequestConflict: another write raced ours; AWS says to retry. The rest are transient.
_RETRY_CODES = frozenset(
    {
        "ConditionalRequestConflict",
        "RequestTimeout",
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeTooSkewed",
        "ExpiredToken",
        "OperationAborted",
    }
)


def _error(response: Response) -> tuple[str, str] | None:
    """(code, message) when S3 answered an error; CompleteMultipartUpload may do so with status 200."""
    if response.status < 300 and b"<Error>" not in response.body[:512]:
        return None
    code, message = f"HTTP{response.status}", response.body[:200].decode("utf-8", "replace").strip()
    try:
        root = ET.fromstring(response.body) if response.body else None  # noqa: S314 - S3's own answer
    except ET.ParseError:
        root = None
    if root is not None:
        code = root.findtext("Code") or code
        message = root.findtext("Message") or message
    return code, " ".join(message.split())


class Hashed:
    """Reads ``fd`` in parts, hashing and counting every byte."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.eof = False
        try:  # bigger pipe buffer: fewer wake-ups between compressor and us (only a speed-up)
            import fcntl  # noqa: PLC0415 - Linux only

            fcntl.fcntl(fd, 1031, 1 << 20)  # F_SETPIPE_SZ
        except (ImportError, OSError):
            pass

    def read(self, size: int) -> bytes:
        chunks: list[bytes] = []
        wanted = size
        while wanted > 0:
            chunk = os.read(self.fd, min(wanted, 1 << 20))
            if not chunk:
                self.eof = True
                break
            chunks.append(chunk)
            wanted -= len(chunk)
        data = b"".join(chunks)
        self.sha256.update(data)
        self.bytes += len(data)
        return data


def upload_stream(
    client: Client,
    key: str,
    stream: Hashed,
    headers: dict[str, str],
    *,
    largest: int = MAX_PART_SIZE,
    parts: int = MAX_PARTS,
) -> None:
    """``stream`` as one object: PutObject if it fits in a part, else a multipart upload."""
    first = stream.read(part_size(1, largest))
    if stream.eof:
        client.put(key, first, headers)
        return
    # A stop signal while the upload is being created waits until its id is known (so the upload can
    # be aborted); it is delivered when the mask is restored, inside the try.
    unmasked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    upload_id = ""
    try:
        upload_id = client.create_upload(key, headers)
        signal.pthread_sigmask(signal.SIG_SETMASK, unmasked)
        etags = _send_parts(client, key, upload_id, first, stream, largest=largest, parts=parts)
        client.complete_upload(key, upload_id, etags)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, unmasked)
        if upload_id:
            _abort_quietly(client, key, upload_id)
        raise


def _send_parts(
    client: Client, key: str, upload_id: str, first: bytes, stream: Hashed, *, largest: int, parts: int
) -> list[str]:
    etags: dict[int, str] = {}
    pool = ThreadPoolExecutor(max_workers=UPLOAD_THREADS)
    pending: set[Future[tuple[int, str]]] = set()

    def send(number: int, data: bytes) -> tuple[int, str]:
        return number, client.upload_part(key, upload_id, number, data)

    def collect(done: set[Future[tuple[int, str]]]) -> None:
        for future in done:
            number, etag = future.result()  # raises the part's error
            etags[number] = etag

    try:
        for number, data in _parts(first, stream, largest, parts):
            pending.add(pool.submit(send, number, data))
            if len(pending) >= UPLOAD_THREADS:  # at most threads + 1 parts in memory
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
        done, pending = wait(pending)
        collect(done)
    finally:
        # on a failure or a signal: no new part starts, and nobody waits for one in flight (the
        # caller aborts the upload; run() leaves with os._exit, not behind the worker threads)
        pool.shutdown(wait=False, cancel_futures=True)
    return [etags[n] for n in sorted(etags)]


def _parts(first: bytes, stream: Hashed, largest: int, parts: int) -> Iterator[tuple[int, bytes]]:
    yield 1, first
    number = 1
    while not stream.eof:
        number += 1
        if number > parts:
            raise S3Error(
                f"the stream is larger than one upload can take ({capacity(largest, parts)} bytes in {parts} "
                f"parts of at most {largest // 2**20} MiB); raise the largest part size (dump.max_part_mib)"
            )
        data = stream.read(part_size(number, largest))
        if data or number == 1:
            yield number, data


def _abort_quietly(client: Client, key: str, upload_id: str) -> None:
    try:
        client.abort_upload(key, upload_id)
    except S3Error as err:
        print(
            f"s3put: warning: {err}; the bucket's lifecycle rule removes the parts after 7 days",
            file=sys.stderr,
        )


def object_headers(args: argparse.Namespace) -> dict[str, str]:
    headers: dict[str, str] = {}
    if args.sse_kms_key_id:
        headers["x-amz-server-side-encryption"] = "aws:kms"
        headers["x-amz-server-side-encryption-aws-kms-key-id"] = args.sse_kms_key_id
    for item in filter(None, (args.metadata or "").split(",")):
        name, _, value = item.partition("=")
        headers[f"x-amz-meta-{name.strip().lower()}"] = value.strip()
    if args.content_type:
        headers["content-type"] = args.content_type
    return headers


def main(argv: list[str], environ: dict[str, str], stdin_fd: int = 0) -> int:
    parser = argparse.ArgumentParser(prog="s3put", description="write-once S3 uploads from a stream")
    parser.add_argument("command", choices=("exists", "put", "upload", "capacity"))
    parser.add_argument("--bucket", default="")
    parser.add_argument("--key", default="")
    parser.add_argument("--region", default="")
    parser.add_argument("--sse-kms-key-id", default="")
    parser.add_argument("--metadata", default="")
    parser.add_argument("--content-type", default="")
    parser.add_argument("--meta", default="", help="upload: file for '<sha256> <bytes>'")
    parser.add_argument("--max-part-mib", type=int, default=MAX_PART_SIZE // 2**20)
    parser.add_argument("--max-parts", type=int, default=MAX_PARTS)
    args = parser.parse_args(argv)
    if not 5 <= args.max_part_mib <= MAX_PART_SIZE // 2**20:
        parser.error(
            f"--max-part-mib {args.max_part_mib} is outside S3's part sizes, 5 to {MAX_PART_SIZE // 2**20}"
        )
    if not 1 <= args.max_parts <= MAX_PARTS:
        parser.error(f"--max-parts {args.max_parts} is outside 1 to {MAX_PARTS} (S3's limit)")
    largest, parts = args.max_part_mib * 2**20, args.max_parts
    if args.command == "capacity":
        print(capacity(largest, parts))
        return 0
    if not (args.bucket and args.key and args.region):
        parser.error(f"{args.command} needs --bucket, --key and --region")
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or ""
    credentials = CredentialSource(environ, environ.get("SB_IMDS_ENDPOINT") or "http://169.254.169.254")
    client = Client(args.bucket, args.region, credentials, endpoint)
    try:
        if args.command == "exists":
            return 0 if client.exists(args.key) else EXIT_ABSENT
        if args.command == "put":
            client.put(args.key, _read_all(stdin_fd), object_headers(args))
            return 0
        if not args.meta:
            parser.error("upload needs --meta")
        stream = Hashed(stdin_fd)
        upload_stream(client, args.key, stream, object_headers(args), largest=largest, parts=parts)
        with open(args.meta, "w", encoding="ascii") as meta:
            meta.write(f"{stream.sha256.hexdigest()} {stream.bytes}\n")
        return 0
    except Exists as err:
        print(f"s3put: {err}", file=sys.stderr)
        return EXIT_EXISTS
    except S3Error as err:
        print(f"s3put: {err}", file=sys.stderr)
        return EXIT_ERROR


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the abort of a running multipart upload


def run() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, _terminate)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    socket.setdefaulttimeout(120)
    try:
        code = main(sys.argv[1:], dict(os.environ))
    except SystemExit as stop:  # a signal (after the abort) or argparse
        code = stop.code if isinstance(stop.code, int) else EXIT_ERROR
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # not sys.exit: that would wait for upload threads still blocked in a request


if __name__ == "__main__":
    run()

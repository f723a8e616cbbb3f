"""The dump's S3 client (lambdas/dump/s3put.py): signatures as AWS computes them, part sizes, Python 3.9."""

from __future__ import annotations

import ast
import datetime
from pathlib import Path

import pytest
import time_machine
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials

from lambdas.dump import s3put

SOURCE = Path(s3put.__file__)
NOW = datetime.datetime(2026, 11, 27, 1, 30, 5, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "token"),
    [
        (
            "PUT",
            "/bucket/dumps/i-0abc/2026/11/27/20261127T0130Z/files.tar.gz",
            {},
            {"if-none-match": "*"},
            "",
        ),
        (
            "PUT",
            "/bucket/dumps/a b/ü.gz",
            {"partNumber": "7", "uploadId": "x~y+z/="},
            {"content-length": "5"},
            "session-token/+=",
        ),
        (
            "POST",
            "/bucket/k",
            {"uploads": ""},
            {"x-amz-meta-managedby": "schoolbackup", "x-amz-server-side-encryption": "aws:kms"},
            "t",
        ),
        (
            "GET",
            "/bucket/",
            {"list-type": "2", "prefix": "dumps/i-1/2026/manifest.json", "max-keys": "1"},
            {},
            "",
        ),
    ],
)
def test_signature_is_the_one_botocore_computes(
    method: str, path: str, query: dict[str, str], headers: dict[str, str], token: str
) -> None:
    creds = s3put.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    ours = s3put.sign(
        method=method,
        host="127.0.0.1:4566",
        path=path,
        query=query,
        headers=headers,
        payload_hash="UNSIGNED-PAYLOAD",
        credentials=creds,
        region="eu-central-2",
        now=NOW,
    )
    url = "https://127.0.0.1:4566" + "/".join(s3put._quote(p) for p in path.split("/"))
    if query:
        url += "?" + "&".join(f"{s3put._quote(k)}={s3put._quote(v)}" for k, v in query.items())
    request = AWSRequest(method=method, url=url, headers=dict(headers))
    # botocore then signs UNSIGNED-PAYLOAD, as s3put does
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    signer = S3SigV4Auth(
        BotoCredentials(creds.access_key, creds.secret_key, token or None), "s3", "eu-central-2"
    )
    with time_machine.travel(NOW, tick=False):
        signer.add_auth(request)
    theirs = request.headers["Authorization"]
    # same credential scope and signature; botocore may sign fewer headers, so compare with the same set
    scope = theirs.split("Credential=")[1].split(",")[0]
    assert scope == f"AKIDEXAMPLE/{NOW:%Y%m%d}/eu-central-2/s3/aws4_request"
    assert ours["authorization"].split("Credential=")[1].split(",")[0] == scope
    signed_by_botocore = theirs.split("SignedHeaders=")[1].split(",")[0].split(";")
    again = s3put.sign(
        method=method,
        host="127.0.0.1:4566",
        path=path,
        query=query,
        headers={k: v for k, v in headers.items() if k in signed_by_botocore},
        payload_hash="UNSIGNED-PAYLOAD",
        credentials=creds,
        region="eu-central-2",
        now=NOW,
    )
    assert again["authorization"] == theirs


def test_part_sizes_grow_so_that_no_dump_hits_the_10000_part_limit() -> None:
    assert s3put.part_size(1) == s3put.part_size(1000) == 8 * 1024**2
    assert s3put.part_size(1001) == 16 * 1024**2
    assert s3put.part_size(10_000) <= s3put.MAX_PART_SIZE
    capacity = sum(s3put.part_size(n) for n in range(1, s3put.MAX_PARTS + 1))
    assert capacity > 5 * 1024**4, "at least 5 TiB in 10,000 parts (the old fixed parts stopped at ~156 GiB)"
    assert all(s3put.part_size(n) >= 5 * 1024**2 for n in range(1, s3put.MAX_PARTS))  # S3's minimum


def test_the_largest_part_bounds_the_parts_and_what_one_upload_can_take() -> None:
    mib, gib = 1024**2, 1024**3
    assert s3put.capacity(64 * mib) == (1000 * 8 + 1000 * 16 + 1000 * 32 + 7000 * 64) * mib  # ~492 GiB
    assert s3put.part_size(1, 5 * mib) == s3put.part_size(9_999, 5 * mib) == 5 * mib
    assert s3put.capacity(5 * mib) == 10_000 * 5 * mib
    assert s3put.capacity(64 * mib, parts=3) == 24 * mib
    assert s3put.capacity() > 5 * 1024 * gib  # S3's own limit of one object is 5 TiB
    assert all(s3put.part_size(n, 64 * mib) <= 64 * mib for n in range(1, s3put.MAX_PARTS + 1))


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--max-part-mib", "4"], "--max-part-mib 4 is outside S3's part sizes, 5 to 5120"),
        (["--max-part-mib", "6000"], "--max-part-mib 6000 is outside S3's part sizes, 5 to 5120"),
        (["--max-parts", "0"], "--max-parts 0 is outside 1 to 10000"),
    ],
)
def test_a_part_setting_outside_what_s3_allows_is_refused_by_name(
    option: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        s3put.main(["capacity", *option], {})
    assert exited.value.code == 2
    assert named in capsys.readouterr().err


def test_capacity_prints_the_bytes_for_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert s3put.main(["capacity", "--max-part-mib", "64"], {}) == 0
    assert int(capsys.readouterr().out) == s3put.capacity(64 * 1024**2)


def test_the_client_parses_as_python_3_9_for_amazon_linux_2023() -> None:
    ast.parse(SOURCE.read_text(encoding="utf-8"), feature_version=(3, 9))
    text = SOURCE.read_text(encoding="utf-8")
    for newer in ("datetime.UTC", "from datetime import UTC", "strict=True", "itertools.pairwise", "match "):
        assert newer not in text, f"{newer!r} needs Python 3.10+"


def test_s3_errors_are_read_from_the_xml_body_also_with_status_200() -> None:
    error = s3put._error(
        s3put.Response(
            200,
            {},
            b"<?xml version='1.0'?>\n<Error><Code>InternalError</Code><Message>We  hit\nit</Message></Error>",
        )
    )
    assert error == ("InternalError", "We hit it")
    assert s3put._error(s3put.Response(200, {}, b"<CompleteMultipartUploadResult/>")) is None
    assert s3put._error(s3put.Response(503, {}, b"")) == ("HTTP503", "")

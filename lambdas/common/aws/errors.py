"""What an AWS error says, read in one place (botocore's ``ClientError.response["Error"]``)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError


def error_code(err: BaseException) -> str:
    """The AWS error code (``DBSnapshotNotFound``), or "" for anything that is not a ClientError."""
    if isinstance(err, ClientError):
        return str(err.response.get("Error", {}).get("Code", ""))
    return ""


def error_text(err: BaseException) -> str:
    """``Code: Message`` for an AWS error, ``Type: text`` for anything else (a sentence for a log or mail)."""
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', str(err))}"
    if isinstance(err, BotoCoreError):
        return str(err)
    return f"{type(err).__name__}: {err}"

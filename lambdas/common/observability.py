"""One logger, one metrics object and an opt-in tracer for every function.

Powertools Tracer pulls in the X-Ray SDK (~280 ms of imports on a cold start), so it is loaded
only when the stack switches tracing on (``POWERTOOLS_TRACE_DISABLED=false``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics

from lambdas.common.contracts import NAMESPACE
from lambdas.common.settings import FunctionSettings

# The function's name labels its log lines. It is deliberately not POWERTOOLS_SERVICE_NAME: Powertools
# adds that as a `service` dimension to every metric, and then no alarm (which watches a metric by the
# exact set of dimensions the code sets, e.g. only Kind) would ever see data.
SERVICE: Final = f"schoolbackup-{FunctionSettings.from_env().name.replace('_', '-')}"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE)

for _noisy in ("boto3", "botocore", "urllib3", "s3transfer"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

F = TypeVar("F", bound=Callable[..., Any])


def traced(handler: F) -> F:
    """``tracer.capture_lambda_handler`` when tracing is on; the handler unchanged otherwise."""
    if not FunctionSettings.from_env().tracing:
        return handler
    from aws_lambda_powertools import Tracer  # noqa: PLC0415 - deliberately lazy, see module docstring

    return cast(F, Tracer().capture_lambda_handler(handler))


# What a context without a deadline reports as remaining time: a day, i.e. "no deadline known".
NO_DEADLINE_MS: Final = 24 * 3600 * 1000


@dataclass(frozen=True)
class LocalContext:
    """Stands in for the Lambda context when a handler is called without one (CLI, tests)."""

    function_name: str = SERVICE
    memory_limit_in_mb: int = 0
    invoked_function_arn: str = ""
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return NO_DEADLINE_MS


def accepts_missing_context(handler: F) -> F:
    """Outermost decorator: ``context=None`` becomes a :class:`LocalContext`, because Powertools'
    ``inject_lambda_context`` reads ``context.function_name`` and friends unconditionally."""

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any = None) -> Any:
        return handler(event, LocalContext() if context is None else context)

    return cast(F, wrapper)


def remaining_time_ms(context: Any) -> Callable[[], int]:
    """The context's ``get_remaining_time_in_millis``; a context without one has no known deadline."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        return cast(Callable[[], int], remaining)
    return lambda: NO_DEADLINE_MS

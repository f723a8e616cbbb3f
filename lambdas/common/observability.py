"""One logger, one metrics object and an opt-in tracer for every function.

Powertools Tracer pulls in the X-Ray SDK (~280 ms of imports on a cold start), so it is loaded
only when the stack switches tracing on (``POWERTOOLS_TRACE_DISABLED=false``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics

from lambdas.common import metric_names

NAMESPACE: Final = metric_names.NAMESPACE

# The function's name labels its log lines. It is deliberately not POWERTOOLS_SERVICE_NAME: Powertools
# adds that as a `service` dimension to every metric, and then no alarm (which watches a metric by the
# exact set of dimensions the code sets, e.g. only Kind) would ever see data.
SERVICE: Final = f"schoolbackup-{os.environ.get('SCHOOLBACKUP_FUNCTION', 'local').replace('_', '-')}"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE)

for _noisy in ("boto3", "botocore", "urllib3", "s3transfer"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

F = TypeVar("F", bound=Callable[..., Any])


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower() in ("false", "0")


def traced(handler: F) -> F:
    """``tracer.capture_lambda_handler`` when tracing is on; the handler unchanged otherwise."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer  # noqa: PLC0415 - deliberately lazy, see module docstring

    return cast(F, Tracer().capture_lambda_handler(handler))

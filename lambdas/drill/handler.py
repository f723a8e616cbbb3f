"""drill (Step Functions, twice a year; cleanup daily): one step of the restore drill per call.

The event is ``{"step": <name>, "drill": <state>}``; the step returns the new state (the state machine
waits between polls, no call waits longer than a few seconds). ``{"step": "cleanup"}`` is the daily
sweep of drill leftovers. EventBridge's "Step Functions Execution Status Change" of an execution that
was stopped by hand or timed out (it never reached its Teardown state) tears that drill down at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.common.jobs.drill import run_step
from lambdas.common.observability import accepts_missing_context, logger, metrics, traced
from lambdas.common.publishing import publish_drill_cleanup, publish_drill_report
from lambdas.common.settings import DrillSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = run_step(event, DrillSettings.from_env)
    if outcome.record is not None:
        publish_drill_report(outcome.record)
    if outcome.removed is not None:
        publish_drill_cleanup(outcome.removed)
    return outcome.state

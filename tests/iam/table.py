"""``make permissions``: the decision table of the synthesized policies, as the IAM evaluator sees it.

Prints what must be denied (and the statement that denies it), what AWS services do for the stack
(allowed) and the same services acting for another account (denied); with copies into another
account, the cross-account cases (tests/iam/cross_account.py) as each requires. Exit status 1 when any
row is not as it must be. The requests the Lambdas and the dump script really make are judged in the unit and
integration tests that make them (``make test``).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from tests.iam.cases import (
    IMPLICIT,
    MUST_DENY,
    OFFSITE,
    OFFSITE_ALLOWED,
    OFFSITE_MUST_DENY,
    Case,
    kms_cases,
    service_requests,
)
from tests.iam.check import Verdict, evaluate
from tests.iam.cross_account import CASES as CROSS_CASES
from tests.iam.cross_account import HOME, MARKING, TARGET, cross_account_stack, outcome
from tests.iam.stack import OTHER_ACCOUNT, StackModel, stack_for


def _row(ok: bool, who: str, request: str, verdict: Verdict) -> str:
    mark = "ok  " if ok else "FAIL"
    decided = ", ".join(verdict.deciders())
    return f"{mark} {verdict.decision.result:17} {who:52.52} {request}  [{decided}]"


def _must_deny(stack: StackModel, case: Case) -> bool:
    """Prints the row; True when it is not as it must be."""
    verdict = case.verdict(stack)
    decided = verdict.deciders()
    expected = "ImplicitlyDenied" if case.decided_by == IMPLICIT else "ExplicitlyDenied"
    ok = verdict.decision.result == expected and (case.decided_by == IMPLICIT or case.decided_by in decided)
    print(_row(ok, case.name, f"{verdict.request.action} {verdict.request.resource}", verdict))
    return not ok


def main() -> int:
    stack = stack_for()
    print("== must be denied")
    failures = sum(_must_deny(stack, case) for case in (*MUST_DENY, *kms_cases()))
    offsite = stack_for(OFFSITE)
    print("\n== with offsite copies: must be denied")
    failures += sum(_must_deny(offsite, case) for case in OFFSITE_MUST_DENY)
    print("\n== with offsite copies: what S3 replication does, allowed")
    for case in OFFSITE_ALLOWED:
        verdict = case.verdict(offsite)
        failures += not verdict.allowed
        print(
            _row(verdict.allowed, case.name, f"{verdict.request.action} {verdict.request.resource}", verdict)
        )
    cross = cross_account_stack()
    print(f"\n== copies into account {TARGET} (home {HOME}): as each case requires")
    for case in (*CROSS_CASES, *MARKING):
        for verdict in case.verdicts(cross):
            ok = outcome(verdict, case.expect)
            failures += not ok
            print(_row(ok, case.name, f"{verdict.request.action} {verdict.request.resource}", verdict))
    for title, account, want in (
        ("what AWS services do for the stack: allowed", None, True),
        (f"the same services acting for account {OTHER_ACCOUNT}: denied", OTHER_ACCOUNT, False),
    ):
        print(f"\n== {title}")
        requests = service_requests(stack) if account is None else service_requests(stack, account)
        for item in requests:
            verdict = evaluate(stack, item.principal, item.request)
            ok = verdict.allowed is want
            failures += not ok
            print(
                _row(
                    ok,
                    f"{item.principal.label} ({item.label})",
                    f"{item.request.action} {item.request.resource}",
                    verdict,
                )
            )
    print(f"\n{failures} row(s) not as they must be" if failures else "\nevery row as it must be")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Every AWS request a Lambda makes in these tests is judged by the IAM evaluator against the
synthesized policies (tests/iam): a request that AWS would deny fails the test that made it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.iam.recorder import Recorder, judge


@pytest.fixture(autouse=True)
def iam_authorization(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    """Records the Lambda code's AWS calls; after the test, each must be Allowed by the deployed
    policies. ``@pytest.mark.iam_denied("ec2:DeleteSnapshot")`` names an action the test expects AWS
    to deny (at least one such request must then really be denied)."""
    recorder = Recorder()
    with recorder.installed():
        yield recorder
    if not recorder.calls:
        return
    verdicts, problems = judge(recorder.calls)
    marker = request.node.get_closest_marker("iam_denied")
    expected = set(marker.args) if marker else set()
    denied = [v for v in verdicts if not v.allowed]
    unexpected = [v for v in denied if v.request.action not in expected or v.problems]
    lines = problems + [v.explain() for v in unexpected]
    if expected and not any(v.request.action in expected and not v.problems for v in denied):
        lines.append(f"expected IAM to deny {sorted(expected)}, but every such request was allowed")
    if lines:
        pytest.fail(
            f"{len(lines)} AWS request(s) of this test would not be allowed in a real account:\n  "
            + "\n  ".join(lines),
            pytrace=False,
        )

#!/usr/bin/env python3
"""CDK entry: load and validate the configuration, build the stack(s), run cdk-nag on each. No AWS or git calls."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from infra.config import CONTEXT_KEY, ConfigError, load_config
from infra.nag import enable_nag
from infra.offsite import add_offsite_stack
from infra.stack import BackupStack
from lambdas.common.contracts import DEFAULT_STACK_NAME


def main() -> None:
    app = cdk.App()
    try:
        config = load_config(app.node.try_get_context(CONTEXT_KEY))
    except ConfigError as err:
        print(
            f"schoolbackup: the configuration in cdk.json ({CONTEXT_KEY}) has {len(err.problems)} problem(s):",
            file=sys.stderr,
        )
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        sys.exit(1)
    # With offsite.account (copies into another account) the home stack is pinned to offsite.home_account.
    home = BackupStack(app, DEFAULT_STACK_NAME, config=config)
    # With offsite.enabled: <stack>-Offsite (in offsite.account when set) and, copying rds or ami into
    # another account, <stack>-OffsiteStaging (the home account's staging key); both deploy before home.
    add_offsite_stack(app, home, config)
    enable_nag(app)
    app.synth()


if __name__ == "__main__":
    main()

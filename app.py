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
    if config.offsite.enabled:
        # Not yet deployable: the copy bucket, the replication, the copy job and their checks are being
        # built. Deploying now would look like offsite copies while there are none.
        print(
            f"schoolbackup: {CONTEXT_KEY}.offsite.enabled is true, but offsite copies cannot be deployed yet "
            "(README.md, Offsite copies); set it to false to deploy",
            file=sys.stderr,
        )
        sys.exit(1)
    home = BackupStack(app, DEFAULT_STACK_NAME, config=config)
    add_offsite_stack(app, home, config)  # with offsite.enabled: <stack>-Offsite, deployed before home
    enable_nag(app)
    app.synth()


if __name__ == "__main__":
    main()

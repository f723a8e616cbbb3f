"""``python -m cli.backupctl``: the same as ``backupctl``."""

from cli.backupctl.app import main

main()

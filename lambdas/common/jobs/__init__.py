"""One module per job: clients + settings + time in, a result dataclass out.

No side effects but AWS calls (and log lines): metrics are published by lambdas.common.publishing,
called from the handlers only, so backupctl and the rehearsal can run a job without printing EMF.
"""

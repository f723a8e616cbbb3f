"""CloudWatch metric names and dimensions shared by the functions that publish them and the alarms
and dashboard that read them (infra imports this module; it must stay free of AWS imports)."""

from typing import Final

NAMESPACE: Final = "schoolbackup"

# Dimension names.
JOB: Final = "Job"  # rds-daily | ami-weekly | prune | verify | restore-test
SOURCE: Final = "Source"  # instance or DB id
KIND: Final = "Kind"  # one of KINDS

KIND_RDS: Final = "rds"
KIND_AMI: Final = "ami"
KIND_DUMP: Final = "dump"
KINDS: Final = (KIND_DUMP, KIND_RDS, KIND_AMI)

# Backup jobs (dimension JOB).
BACKUPS_CREATED: Final = "BackupsCreated"
BACKUPS_ALREADY_EXISTED: Final = "BackupsAlreadyExisted"
BACKUPS_FAILED: Final = "BackupsFailed"

# RDS manual snapshot quota (no dimension).
RDS_SNAPSHOTS_USED: Final = "RdsManualSnapshotsUsed"
RDS_SNAPSHOTS_QUOTA: Final = "RdsManualSnapshotsQuota"
RDS_SNAPSHOTS_PERCENT: Final = "RdsManualSnapshotQuotaPercent"

# Prune (dimension KIND).
PRUNE_DELETED: Final = "PruneDeleted"
PRUNE_KEPT: Final = "PruneKept"
PRUNE_FAILURES: Final = "PruneFailures"
PRUNE_REMAINING: Final = "PruneRemaining"

# Verify: per SOURCE+KIND, and the worst source per KIND (what the age alarms watch).
BACKUP_AGE_HOURS: Final = "NewestGoodBackupAgeHours"
WORST_BACKUP_AGE_HOURS: Final = "WorstNewestGoodBackupAgeHours"
VERIFY_PASSED: Final = "VerificationPassed"  # 1 or 0 per SOURCE+KIND
VERIFY_FAILURES: Final = "VerificationFailures"  # count over all sources, no dimension

# Restore test (no dimension).
RESTORE_TEST_PASSED: Final = "RestoreTestPassed"
RESTORE_TEST_SECONDS: Final = "RestoreTestDurationSeconds"

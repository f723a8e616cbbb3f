"""backupctl: the admin's command line for schoolbackup (status, run, prune, restore, simulate)."""

"""What the dashboard, bulk edits and reports all count with: open issues with snoozes applied (issues),
names by id (directory), the issue querysets and CSV rows (lists) and the stored counts (snapshots)."""

from django.dispatch import Signal

# Sent with `run` (a SyncRun) after a sync succeeded, once its rows are written.
sync_succeeded = Signal()

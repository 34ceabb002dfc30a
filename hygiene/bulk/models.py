"""Change sets: a steward's bulk edit, stored before it runs, with every
resource's values before and after, so it can be previewed, applied once,
retried, audited and undone."""
from django.conf import settings
from django.db import models
from django.utils import timezone

from catalog_sync.models import Leased


class ChangeSet(Leased):
    DRAFT = "draft"          # previewed, not applied
    PENDING = "pending"      # applied by a steward, waiting for a worker
    RUNNING = "running"
    COMPLETED = "completed"  # every item applied, or skipped because Secoda changed it since the preview
    PARTIAL = "partial"      # finished, some items failed
    FAILED = "failed"        # stopped by an error that needs a person
    DISCARDED = "discarded"
    STATUSES = [(DRAFT, "Preview"), (PENDING, "Waiting for a worker"), (RUNNING, "Running"),
                (COMPLETED, "Completed"), (PARTIAL, "Finished with failures"), (FAILED, "Failed"),
                (DISCARDED, "Discarded")]
    FINISHED = (COMPLETED, PARTIAL, FAILED)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="change_sets")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=16, choices=STATUSES, default=DRAFT, db_index=True)
    summary = models.CharField(max_length=500, help_text="What the edit does, in plain words.")
    edit = models.JSONField(default=dict, help_text="The edit form's values.")
    filter_query = models.TextField(blank=True, help_text="The list filter the resources were chosen with.")
    filter_label = models.CharField(max_length=300, blank=True)
    rule = models.CharField(max_length=32, blank=True)
    selected = models.IntegerField(default=0, help_text="How many resources were selected.")
    undo_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="undone_by")
    applied_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    applied_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)  # last handed to the broker
    retry_at = models.DateTimeField(null=True, blank=True)  # waiting out a Secoda or database outage until then
    retries = models.IntegerField(default=0)  # outages waited out so far (the backoff grows with them)
    api_calls = models.IntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One undo per change set (a discarded draft does not count): two clicks make one draft.
            models.UniqueConstraint(fields=["undo_of"], condition=~models.Q(status="discarded"),
                                    name="one_undo_per_change_set"),
        ]

    def __str__(self):
        return f"Change set #{self.pk}: {self.summary}"

    @property
    def is_finished(self):
        return self.status in self.FINISHED


class ChangeItem(models.Model):
    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"
    SKIPPED = "skipped"      # changed in Secoda since the preview: not overwritten
    STATUSES = [(PENDING, "Waiting"), (APPLIED, "Applied"), (FAILED, "Failed"),
                (SKIPPED, "Skipped: changed in Secoda")]

    change_set = models.ForeignKey(ChangeSet, on_delete=models.CASCADE, related_name="items")
    resource = models.ForeignKey("catalog_sync.Resource", on_delete=models.DO_NOTHING, db_constraint=False,
                                 related_name="+")
    title = models.TextField(blank=True)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING, db_index=True)
    message = models.TextField(blank=True)
    attempts = models.IntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["change_set", "resource"], name="changeitem_unique")]

    def __str__(self):
        return f"{self.title or self.resource_id}: {self.get_status_display()}"

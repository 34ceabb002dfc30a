"""A documentation migration as the steward set it up: which integrations, renames, choices for the ambiguous
matches, what to copy and how. Its change set does the writing; this row lets the end check be run again at
any time against the mirror as it is then."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class MigrationPlan(models.Model):
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Not real foreign keys, as on the mirror's resources: an integration may leave the mirror later.
    old_integration = models.ForeignKey("catalog_sync.Integration", on_delete=models.DO_NOTHING, db_constraint=False,
                                        related_name="+")
    new_integration = models.ForeignKey("catalog_sync.Integration", on_delete=models.DO_NOTHING, db_constraint=False,
                                        related_name="+")
    renames = models.JSONField(default=list, blank=True, help_text="[[old names], [new names]], as written.")
    picks = models.JSONField(default=dict, blank=True, help_text="Ambiguous old id -> the new id chosen ('' skips).")
    fields = models.JSONField(default=list, help_text="The fields copied.")
    overwrite = models.BooleanField(default=False, help_text="Replace the new resource's values, not only blanks.")
    pairs = models.IntegerField(default=0, help_text="Matched pairs when it was previewed.")
    change_set = models.OneToOneField("bulk.ChangeSet", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="migration")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Migration #{self.pk}"

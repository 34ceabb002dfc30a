"""The life of every issue: one interval per time a resource broke a rule, opened when an update first sees it
open and closed when it no longer is (fixed, snoozed, archived, removed, or its rule switched off). A reopen is
a new interval. An interval opened by the very first update is marked `seen_since`: it was open at least since
then, and nobody knows since when."""
from django.db import models
from django.db.models import Q

from catalog_sync.models import Resource, SyncRun


class IssueInterval(models.Model):
    FIXED, SNOOZED, ARCHIVED, REMOVED, RULE_OFF = "fixed", "snoozed", "archived", "removed", "rule_off"
    CLOSE_REASONS = [(FIXED, "Fixed"), (SNOOZED, "Snoozed"), (ARCHIVED, "Archived"), (REMOVED, "Removed from Secoda"),
                     (RULE_OFF, "Rule switched off or deleted")]
    SYNC, CHANGE_SET, SNOOZE, RULES, REFRESH = "sync", "change_set", "snooze", "rules", "refresh"
    CAUSES = [(SYNC, "A sync"), (CHANGE_SET, "A change set"), (SNOOZE, "A snooze"), (RULES, "A rule change"),
              (REFRESH, "A refresh")]

    resource = models.ForeignKey(Resource, on_delete=models.DO_NOTHING, db_constraint=False,
                                 related_name="issue_intervals")
    rule = models.CharField(max_length=32)
    opened_at = models.DateTimeField()
    opened_cause = models.CharField(max_length=16, choices=CAUSES)
    opened_sync = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                    related_name="+")
    opened_change_set_id = models.IntegerField(null=True, blank=True)
    seen_since = models.BooleanField(default=False, help_text="Open when history began: its start is unknown.")
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=16, choices=CLOSE_REASONS, blank=True)
    closed_cause = models.CharField(max_length=16, choices=CAUSES, blank=True)
    closed_sync = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                    related_name="+")
    closed_change_set_id = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["resource", "rule"], condition=Q(closed_at__isnull=True),
                                               name="issueinterval_one_open")]
        indexes = [
            models.Index(fields=["rule", "closed_at"], name="issueinterval_rule_closed"),
            models.Index(fields=["closed_at"], name="issueinterval_closed"),
            models.Index(fields=["opened_at"], name="issueinterval_opened"),
            # The oldest open issues (overview, team pages) without sorting every open interval.
            models.Index(fields=["opened_at", "id"], condition=Q(closed_at__isnull=True),
                         name="issueinterval_open_age"),
            # One rule's list sorted by "Open for": its open intervals in order, a page at a time.
            models.Index(fields=["rule", "opened_at", "resource"], condition=Q(closed_at__isnull=True),
                         name="issueinterval_rule_open_age"),
            # Opened in the last 7 or 30 days counts only issues whose start is known.
            models.Index(fields=["opened_at"], condition=Q(seen_since=False), name="issueinterval_opened_known"),
        ]

    @property
    def open(self):
        return self.closed_at is None

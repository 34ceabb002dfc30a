from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class Snapshot(models.Model):
    """Counts per rule and their breakdowns at one moment: the overview reads the newest,
    the trend chart reads one per successful sync."""

    SYNC = "sync"
    SNOOZE = "snooze"
    RULES = "rules"
    REFRESH = "refresh"
    REASONS = [(SYNC, "After a sync"), (SNOOZE, "After a snooze changed"), (RULES, "After a rule changed"), (REFRESH, "Refreshed")]

    taken_at = models.DateTimeField(default=timezone.now, db_index=True)
    reason = models.CharField(max_length=16, choices=REASONS, default=SYNC)
    sync_run = models.ForeignKey("catalog_sync.SyncRun", null=True, blank=True, on_delete=models.SET_NULL)
    totals = models.JSONField(default=dict)
    by_integration = models.JSONField(default=dict)
    by_entity_type = models.JSONField(default=dict)
    by_team = models.JSONField(default=dict)
    by_owner = models.JSONField(default=dict)
    # Seconds each step took: health scores, issue history, suggestions, counts.
    durations = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-taken_at", "-id"]
        get_latest_by = "taken_at"

    def __str__(self):
        return f"Snapshot {self.taken_at:%Y-%m-%d %H:%M}"


class SnoozeQuerySet(models.QuerySet):
    def active(self, now=None):
        return self.filter(cancelled_at__isnull=True, expires_at__gt=now or timezone.now())


class Snooze(models.Model):
    """An accepted exception: one resource's issue, or every resource matching a filter,
    left out of the counts until `expires_at`."""

    ALL_RULES = ""

    rule = models.CharField(max_length=32, blank=True, help_text="Blank: every rule.")
    resource = models.ForeignKey("catalog_sync.Resource", null=True, blank=True, on_delete=models.CASCADE,
                                 db_constraint=False, related_name="snoozes")
    filter_query = models.TextField(blank=True, help_text="The list filter this snooze covers (query string).")
    filter_label = models.CharField(max_length=300, blank=True)
    reason = models.TextField()
    expires_at = models.DateTimeField(db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="snoozes")
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")

    objects = SnoozeQuerySet.as_manager()

    class Meta:
        ordering = ["expires_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(resource__isnull=False) & models.Q(filter_query=""))
                | (models.Q(resource__isnull=True) & ~models.Q(filter_query="")),
                name="snooze_resource_xor_filter",
            ),
        ]

    def __str__(self):
        target = self.resource_id or self.filter_label or self.filter_query
        return f"Snooze of {self.rule or 'every rule'} on {target}"

    @property
    def is_active(self):
        return self.cancelled_at is None and self.expires_at > timezone.now()


class SavedView(models.Model):
    """A named issue list: a rule (blank: all issues) and the filter's query string, normalised (filter
    parameters only, in the filter form's order, no empty values). Shared views are listed for everyone and
    only stewards change them; a personal view is its owner's (stewards see and tidy every view)."""

    name = models.CharField(max_length=100)
    rule = models.CharField(max_length=32, blank=True, help_text="Blank: all issues.")
    filter_query = models.TextField(blank=True, help_text="The list filter (query string).")
    filter_label = models.CharField(max_length=300, blank=True, help_text="The filter in words, when it was saved.")
    shared = models.BooleanField(default=False, help_text="Listed for everyone; only stewards change it.")
    # A shared view outlives its creator's account.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="saved_views")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = [Lower("name"), "id"]
        constraints = [
            # One name per person, and one name among shared views (whatever the case).
            models.UniqueConstraint(Lower("name"), "owner", name="saved_view_name_per_owner"),
            models.UniqueConstraint(Lower("name"), condition=models.Q(shared=True),
                                    name="saved_view_name_shared"),
        ]

    def __str__(self):
        return self.name

    @property
    def link(self):
        """The list this view opens: its rule's page with its filter (the shareable link, as a path)."""
        from django.urls import reverse

        path = reverse("dashboard:rule", args=[self.rule]) if self.rule else reverse("dashboard:issues")
        return f"{path}?{self.filter_query}" if self.filter_query else path

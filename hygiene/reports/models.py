from django.conf import settings
from django.db import models
from django.utils import timezone


class Subscription(models.Model):
    """A scheduled e-mail report: what it covers, how often, and when it is next due."""

    WORKSPACE, TEAM, INTEGRATION, MINE, VIEW = "workspace", "team", "integration", "mine", "view"
    SCOPES = [(WORKSPACE, "The whole workspace"), (TEAM, "A team"), (INTEGRATION, "An integration"),
              (MINE, "Assets I own"), (VIEW, "A saved view")]
    DAILY, WEEKLY, MONTHLY = "daily", "weekly", "monthly"
    FREQUENCIES = [(DAILY, "Every day"), (WEEKLY, "Every week"), (MONTHLY, "Every month (on the 1st)")]
    WEEKDAYS = [(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"), (4, "Friday"), (5, "Saturday"),
                (6, "Sunday")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions")
    email = models.EmailField(help_text="Where the report goes.")
    scope = models.CharField(max_length=16, choices=SCOPES, default=WORKSPACE)
    scope_id = models.CharField(max_length=64, blank=True, help_text="The team or integration.")
    # Deleting a view stops its reports (hygiene.dashboard.saved_views.delete_view); they stay, saying why.
    saved_view = models.ForeignKey("dashboard.SavedView", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="subscriptions", help_text="The saved view this report covers.")
    frequency = models.CharField(max_length=16, choices=FREQUENCIES, default=WEEKLY)
    weekday = models.PositiveSmallIntegerField(choices=WEEKDAYS, default=0)
    hour = models.PositiveSmallIntegerField(default=8, help_text="Local hour, 0-23.")
    time_zone = models.CharField(max_length=64, default="UTC")
    active = models.BooleanField(default=True)
    next_due_at = models.DateTimeField(db_index=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_counts = models.JSONField(default=dict, blank=True, help_text="Counts in the last report sent.")
    failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["next_due_at", "id"]

    @property
    def cadence(self):
        """"daily", "weekly" or "monthly", for sentences ("a weekly report"): the choice labels read badly there."""
        return self.frequency

    @property
    def view_deleted(self):
        """A report on a saved view that no longer exists: stopped, never sent."""
        return self.scope == self.VIEW and self.saved_view_id is None

    def __str__(self):
        return f"{self.get_scope_display()} report to {self.email}"


class Delivery(models.Model):
    """One attempt to send a report: what was sent, when, and whether it went out."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    due_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # An unsent delivery is tried again from then on (after a failure, or if its worker died mid-send).
    retry_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    preview = models.BooleanField(default=False, help_text="Sent on request ('send me this now').")

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["subscription", "due_at"], condition=models.Q(preview=False),
                                               name="delivery_once_per_due_time")]

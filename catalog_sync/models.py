"""The mirror of a Secoda workspace.

Rows are never deleted by a sync: something that vanished upstream gets
`removed_at`, so history and audit trails keep pointing at real rows.
"""
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class MirroredQuerySet(models.QuerySet):
    def present(self):
        return self.filter(removed_at__isnull=True)


class Mirrored(models.Model):
    """Bookkeeping shared by every mirrored kind."""

    id = models.CharField(primary_key=True, max_length=64)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_run = models.BigIntegerField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = MirroredQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def is_present(self):
        return self.removed_at is None


class Integration(Mirrored):
    name = models.CharField(max_length=255, blank=True)
    type = models.CharField(max_length=100, blank=True, db_index=True)
    teams = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    last_extracted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name or self.id

    @property
    def is_dbt(self):
        return is_dbt_type(self.type)


def is_dbt_type(integration_type):
    """Secoda's dbt type strings are undocumented (dbt, dbt_core, dbt_cloud...)."""
    return "dbt" in (integration_type or "").lower()


class SecodaUser(Mirrored):
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=320, blank=True, db_index=True)
    role = models.CharField(max_length=64, blank=True)
    disabled = models.BooleanField(default=False)

    class Meta:
        ordering = ["first_name", "last_name", "email"]
        verbose_name = "Secoda user"

    def __str__(self):
        return self.display_name

    @property
    def display_name(self):
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.id


class SecodaGroup(Mirrored):
    name = models.CharField(max_length=255, blank=True)
    users = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "Secoda group"

    def __str__(self):
        return self.name or self.id


class Team(Mirrored):
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    archived = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name or self.id


class Tag(Mirrored):
    name = models.CharField(max_length=255, blank=True)
    color = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name or self.id


class Resource(Mirrored):
    """One catalog resource (table, column, dashboard, chart...)."""

    entity_type = models.CharField(max_length=64, blank=True, db_index=True)
    native_type = models.CharField(max_length=128, blank=True)
    title = models.TextField(blank=True)
    title_full = models.TextField(blank=True)
    icon = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    definition = models.TextField(blank=True)
    definition_version = models.IntegerField(null=True, blank=True)
    # Not real foreign keys: upstream may point at things the mirror has not seen (yet).
    integration = models.ForeignKey(
        Integration, null=True, blank=True, db_constraint=False, on_delete=models.DO_NOTHING,
        related_name="resources", db_index=False,  # covered by resource_integration_type
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, db_constraint=False, on_delete=models.DO_NOTHING,
        related_name="children",
    )
    children_count = models.IntegerField(null=True, blank=True)
    workspace_id = models.CharField(max_length=64, blank=True)
    owners = models.JSONField(default=list, blank=True)
    owners_groups = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=list, blank=True)
    teams = models.JSONField(default=list, blank=True)
    collections = models.JSONField(default=list, blank=True)
    subscribers = models.JSONField(default=list, blank=True)
    sources = models.JSONField(default=list, blank=True)
    internal_users = models.JSONField(default=list, blank=True)
    external_users = models.JSONField(default=list, blank=True)
    published = models.BooleanField(default=False)
    archived = models.BooleanField(default=False)
    archived_at = models.DateTimeField(null=True, blank=True)
    pii = models.BooleanField(default=False)
    verified = models.BooleanField(default=False)
    stale = models.BooleanField(default=False)
    stale_at = models.DateTimeField(null=True, blank=True)
    forced_unstale_by_user = models.BooleanField(default=False)
    url = models.TextField(blank=True)
    internal_usage = models.IntegerField(null=True, blank=True)
    external_usage = models.BigIntegerField(null=True, blank=True)
    row_count = models.BigIntegerField(null=True, blank=True)
    byte_size = models.BigIntegerField(null=True, blank=True)
    search_metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    external_updated_at = models.DateTimeField(null=True, blank=True)
    # Derived at sync time from the hygiene rules, so counts use plain indexes.
    is_owned = models.BooleanField(default=False)
    is_documented = models.BooleanField(default=False)
    # The 0-100 health score with snoozes applied, refreshed with every snapshot (lists sort on it).
    health_score = models.SmallIntegerField(null=True, blank=True)
    # Mirror bookkeeping.
    content_hash = models.CharField(max_length=40, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["title_full", "id"]
        indexes = [
            models.Index(fields=["integration", "entity_type"], name="resource_integration_type"),
            models.Index(fields=["updated_at"], name="resource_updated_at"),
            # Issue lists sort by title without regard to case and page with LIMIT.
            models.Index(Lower("title_full"), "id", name="resource_title_ci"),
            models.Index(fields=["health_score", "id"], name="resource_health"),
        ]

    def __str__(self):
        return self.title_full or self.title or self.id


class ResourceRef(models.Model):
    """One owner, owning group, tag or team of a resource: a queryable copy of its lists."""

    OWNER = "owner"
    OWNER_GROUP = "owner_group"
    TAG = "tag"
    TEAM = "team"
    KINDS = [(OWNER, "Owner"), (OWNER_GROUP, "Owning group"), (TAG, "Tag"), (TEAM, "Team")]
    LIST_FIELDS = {OWNER: "owners", OWNER_GROUP: "owners_groups", TAG: "tags", TEAM: "teams"}

    # No database constraint: refs are rewritten in bulk with their resource, and a per-row FK check
    # would double the cost of every sync batch.
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="refs", db_constraint=False)
    kind = models.CharField(max_length=16, choices=KINDS)
    ref_id = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["resource", "kind", "ref_id"], name="resourceref_unique")]
        indexes = [models.Index(fields=["kind", "ref_id"], name="resourceref_kind_ref")]


class DbtTestStatus(models.Model):
    FAILING = "failing"
    WARNING = "warning"
    STATUSES = [(FAILING, "Failing"), (WARNING, "Warning")]

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="dbt_statuses")
    resource_id = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=STATUSES)
    first_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "dbt test status"
        verbose_name_plural = "dbt test statuses"
        constraints = [
            models.UniqueConstraint(fields=["integration", "resource_id", "status"], name="dbtstatus_unique"),
        ]


class SyncRun(models.Model):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUSED = "refused"
    STATUSES = [(RUNNING, "Running"), (SUCCEEDED, "Succeeded"), (FAILED, "Failed"), (REFUSED, "Refused")]

    FULL = "full"
    KINDS = [(FULL, "Full sweep")]

    kind = models.CharField(max_length=16, choices=KINDS, default=FULL)
    trigger = models.CharField(max_length=32, default="manual")
    status = models.CharField(max_length=16, choices=STATUSES, default=RUNNING, db_index=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    holder = models.CharField(max_length=200, blank=True)
    fetched = models.IntegerField(default=0)
    created = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    unchanged = models.IntegerField(default=0)
    removed = models.IntegerField(default=0)
    requests = models.IntegerField(default=0)
    slices_total = models.IntegerField(default=0)
    slices_done = models.IntegerField(default=0)
    removals_checked = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    warnings = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"Sync #{self.pk} ({self.get_status_display()})"

    @property
    def duration(self):
        if not self.finished_at:
            return None
        return self.finished_at - self.started_at


class Lease(models.Model):
    """A named lock held until `expires_at`: survives a crashed holder by expiring."""

    name = models.CharField(primary_key=True, max_length=100)
    holder = models.CharField(max_length=200, blank=True)
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    def __str__(self):
        return self.name

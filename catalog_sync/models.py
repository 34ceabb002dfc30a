"""The mirror of a Secoda workspace.

Rows are never deleted by a sync: something that vanished upstream gets
`removed_at`, so history and audit trails keep pointing at real rows.
"""
from django.db import models
from django.db.models import Q
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


class Leased(models.Model):
    """A row one worker holds at a time, until `lease_until`: a crashed holder's lease lapses
    (`catalog_sync.locks.take` takes one, `locks.prolong` renews it)."""

    holder = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @staticmethod
    def lapsed(now):
        """Rows whose lease ran out: whoever held them is gone."""
        return Q(lease_until__lt=now)


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
    """One catalog resource (table, column, dashboard, chart...).

    Every index here is paid for on each row a sync writes or a snapshot scores (a million of them in a full
    sweep), so there is no index no query needs: `removed_at` has only its partial index (present rows are
    most rows, no index helps "IS NULL"), and `entity_type`, `parent` and the key have no `varchar_pattern_ops`
    twin (nothing searches them with LIKE, and their plain indexes answer equality; migration 0013 dropped
    the key's). On PostgreSQL the table's pages are filled to half (migration 0015), so marking a row seen is
    a heap-only update that writes none of the indexes."""

    removed_at = models.DateTimeField(null=True, blank=True)  # indexed where set: resource_removed_at
    entity_type = models.CharField(max_length=64, blank=True)
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
        related_name="children", db_index=False,  # resource_parent
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
    # Facts about the record (normalize.is_owned, is_documented), stored so counts use plain indexes.
    is_owned = models.BooleanField(default=False)
    is_documented = models.BooleanField(default=False)
    # The 0-100 health score with snoozes applied, refreshed with every snapshot (lists sort on it).
    health_score = models.SmallIntegerField(null=True, blank=True)
    # When its oldest open issue began, and whether that start is only "seen since" (the history began with it
    # open), copied from the issue history with every snapshot: the all-issues list sorts on it with an index.
    issues_open_since = models.DateTimeField(null=True, blank=True)
    issues_open_since_seen = models.BooleanField(default=False, db_default=False)
    # Mirror bookkeeping.
    content_hash = models.CharField(max_length=40, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["title_full", "id"]
        indexes = [
            models.Index(fields=["integration", "entity_type"], name="resource_integration_type"),
            models.Index(fields=["entity_type"], name="resource_entity_type"),
            models.Index(fields=["parent"], name="resource_parent"),
            models.Index(fields=["updated_at"], name="resource_updated_at"),
            # Issue lists sort by title without regard to case and page with LIMIT.
            models.Index(Lower("title_full"), "id", name="resource_title_ci"),
            models.Index(fields=["health_score", "id"], name="resource_health"),
            # What a sync changed or removed: the issue history updates only those after an incremental sync.
            models.Index(fields=["changed_at"], name="resource_changed_at"),
            models.Index(fields=["removed_at"], name="resource_removed_at", condition=Q(removed_at__isnull=False)),
            # The unowned and the undocumented present resources of one integration (and type): filtered issue
            # lists count them without reading the rest of that integration.
            # (PostgreSQL: with the other flag in the index, "undocumented and no owner" is counted from the index.)
            models.Index(fields=["integration", "entity_type"], name="resource_unowned", include=["is_documented"],
                         condition=Q(is_owned=False, removed_at__isnull=True, archived=False)),
            models.Index(fields=["integration", "entity_type"], name="resource_undocumented", include=["is_owned"],
                         condition=Q(is_documented=False, removed_at__isnull=True, archived=False)),
            # The stale present resources (a few in a hundred): a search of the stale list ANDs this with the title
            # indexes and reads only stale rows (at 1,000,000, 86 ms -> 25 ms to count "revenue"), and a stale list
            # of one integration is counted from it.
            models.Index(fields=["integration", "entity_type"], name="resource_stale",
                         condition=Q(stale=True, removed_at__isnull=True, archived=False)),
            # The two biggest lists sorted by health walk their own rows, not every healthier resource first.
            models.Index(fields=["health_score", "id"], name="resource_unowned_health",
                         condition=Q(is_owned=False, removed_at__isnull=True, archived=False)),
            models.Index(fields=["health_score", "id"], name="resource_undocumented_health",
                         condition=Q(is_documented=False, removed_at__isnull=True, archived=False)),
            # "Open for", blanks (no open issue in the history) last, walked without a sort. On PostgreSQL the
            # other direction has an index of its own, (issues_open_since DESC NULLS LAST, id DESC): SQLite cannot
            # index NULLS LAST, so migration 0011 adds it there only.
            models.Index(fields=["issues_open_since", "id"], name="resource_open_since"),
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


class ResourceChange(models.Model):
    """What a sync saw change on a resource that was already mirrored: the fields a steward cares about,
    before and after. Usage counts and timestamps move all the time and are left out."""

    WATCHED = ("title", "description", "definition", "owners", "owners_groups", "tags", "teams", "verified", "pii",
               "published", "stale", "archived")

    resource_id = models.CharField(max_length=64)
    sync_run = models.ForeignKey("SyncRun", null=True, on_delete=models.SET_NULL, db_constraint=False,
                                 related_name="+")
    at = models.DateTimeField(default=timezone.now)
    changes = models.JSONField(default=dict, help_text="Field -> [before, after].")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["resource_id", "-at"], name="resourcechange_resource_at")]


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
    INCOMPLETE = "incomplete"  # ran to the end, but could not list everything: partial counts, no removals
    STATUSES = [(RUNNING, "Running"), (SUCCEEDED, "Succeeded"), (INCOMPLETE, "Incomplete"), (FAILED, "Failed"),
                (REFUSED, "Refused")]

    FULL = "full"
    INCREMENTAL = "incremental"
    KINDS = [(FULL, "Full sweep"), (INCREMENTAL, "Incremental")]

    IN_PROCESS = "in_process"
    FAN_OUT = "fan_out"
    MODES = [(IN_PROCESS, "In one process"), (FAN_OUT, "Fanned out across workers")]

    STARTING = "starting"    # listing integrations and people; an incremental sync lists its changes here
    SWEEPING = "sweeping"    # a full sweep's slices are running
    FINISHING = "finishing"  # dbt results, removals, the outcome
    DONE = "done"

    kind = models.CharField(max_length=16, choices=KINDS, default=FULL)
    mode = models.CharField(max_length=16, choices=MODES, default=IN_PROCESS)
    stage = models.CharField(max_length=16, default=STARTING)
    concurrency = models.PositiveIntegerField(default=1)
    # The newest `updated_at` this run can vouch for: the next incremental sync lists back to it.
    high_water_mark = models.DateTimeField(null=True, blank=True)
    fallback_reason = models.TextField(blank=True, help_text="Why an incremental sync became a full sweep.")
    # What the sweep learned about this Secoda (sort refused, the type filter's field name).
    options = models.JSONField(default=dict, blank=True)
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
    # When a slice last listed, wrote or ended: a sweep without progress for SYNC_STALL_MINUTES is failed.
    progress_at = models.DateTimeField(null=True, blank=True)
    # Slices in a row that failed because Secoda could not be reached (a success resets it).
    unreachable_streak = models.IntegerField(default=0)
    # The finishing worker's lease (renewed by its heartbeat); the watcher finishes a sweep whose finisher died.
    lease_until = models.DateTimeField(null=True, blank=True)
    finisher = models.CharField(max_length=200, blank=True)  # who holds that lease
    # Set when the run stopped because Secoda could not be reached: the watcher resumes it once it answers.
    resume_when_reachable = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"Sync #{self.pk} ({self.get_status_display()})"

    @property
    def duration(self):
        if not self.finished_at:
            return None
        return self.finished_at - self.started_at


class SyncSlice(Leased):
    """One listing (or a range of its pages) of a full sweep, run by whichever worker claims it first.

    A slice whose listing turns out capped splits into narrower slices (`spawned_by` points back);
    a long one hands its later pages to range slices; a split by parents waits until the parents
    are in the mirror, then packs them.
    """

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    WAITING = "waiting"  # a split by parents, waiting for its parents to be mirrored
    STATUSES = [(PENDING, "Waiting for a worker"), (RUNNING, "Running"), (DONE, "Done"), (FAILED, "Failed"),
                (WAITING, "Waiting for parents")]

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="slices")
    spawned_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="spawned")
    label = models.CharField(max_length=300)
    filter = models.JSONField(null=True, blank=True)
    # How to split this listing if it holds more than one listing may return.
    split = models.CharField(max_length=16, blank=True)
    integration_id = models.CharField(max_length=64, blank=True)
    entity_type = models.CharField(max_length=64, blank=True)
    first_page = models.PositiveIntegerField(default=1)
    last_page = models.PositiveIntegerField(null=True, blank=True)  # None: to the end of the listing
    remainder = models.BooleanField(default=False)  # lists what its siblings did not; may be refused
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    expected = models.IntegerField(null=True, blank=True)  # the listing's count, when it was probed
    listed = models.IntegerField(default=0)
    requests = models.IntegerField(default=0)
    refused = models.BooleanField(default=False)  # a remainder listing this Secoda would not run
    incomplete = models.BooleanField(default=False)  # over the cap with no narrower way to list it
    note = models.TextField(blank=True)
    error = models.TextField(blank=True)
    peak_rss_mb = models.FloatField(null=True, blank=True)  # of the worker process, when it ended
    dispatched_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)  # a retry waits until then (no countdown tasks)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "status"], name="syncslice_run_status")]

    def __str__(self):
        pages = "" if self.first_page == 1 and self.last_page is None else (
            f" (pages {self.first_page}–{self.last_page or 'end'})")
        return f"{self.label}{pages}"


class Lease(Leased):
    """A named lock held until `lease_until`: survives a crashed holder by expiring."""

    name = models.CharField(primary_key=True, max_length=100)
    acquired_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.name

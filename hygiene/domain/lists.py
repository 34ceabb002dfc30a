"""Issue lists: the queryset behind a list page, its CSV export and its bulk actions."""
from django.db.models import F, Q
from django.utils import timezone

from hygiene.domain.issues import active_snoozes, any_of, flags, open_issue_filters, snoozed_issue_filters
from hygiene.lifecycle.ages import with_open_since
from hygiene.rulebook import registry
from hygiene.rules import in_scope

SNOOZED_HIDE, SNOOZED_ONLY = "hide", "only"
# Fields a list never shows: kept out of the SELECT (documentation can be long).
DEFERRED = ("definition", "search_metadata", "internal_users", "external_users", "subscribers", "collections",
            "sources")


def issue_queryset(rule=None, snoozed=SNOOZED_HIDE, snoozes=None):
    """Resources in scope with an open (or, with snoozed="only", a snoozed) issue of `rule`
    (any rule when None), annotated with which rules they break and their health. Since when the issue is open
    is added where it is shown or sorted on (`hygiene.lifecycle.ages.with_open_since`): for one rule it is a join,
    which counting and paging need not pay for.
    Filter it with ResourceFilterSet(..., rule=rule), so "Open longer than" and "New since" mean that rule too."""
    snoozes = active_snoozes() if snoozes is None else snoozes
    open_filters = open_issue_filters(snoozes=snoozes)
    annotations = flags("breaks_", open_filters)
    if snoozed == SNOOZED_ONLY:
        snoozed_filters = snoozed_issue_filters(snoozes=snoozes)
        chosen = {name: q for name, q in snoozed_filters.items() if rule is None or name == rule}
        condition = any_of(chosen) if chosen else Q(pk__in=[])
        annotations.update(flags("snoozed_", snoozed_filters))
    else:
        condition = open_filters[rule] if rule else any_of(open_filters)
    return (
        in_scope().filter(condition).select_related("integration").defer(*DEFERRED)
        .annotate(health=F("health_score"), **annotations)
    )


# The columns a CSV row reads: loading only these keeps a 100,000-row export quick.
CSV_FIELDS = ("id", "title_full", "entity_type", "native_type", "integration__name", "owners", "owners_groups",
              "teams", "tags", "external_usage", "internal_usage", "pii", "verified", "published", "stale",
              "updated_at", "url")

CSV_HEADER = ["id", "title_full", "entity_type", "native_type", "integration", "issues", "health", "open_since",
              "owners", "owning_groups", "teams", "tags", "external_usage", "internal_usage", "pii", "verified",
              "published", "stale", "updated_at", "secoda_url"]


def spreadsheet_safe(value):
    """Catalog text opened in a spreadsheet must not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_rows(queryset, directory, rule=None):
    """Rows for a CSV export of `rule`'s list, streamed in chunks so 100,000 rows never sit in memory."""
    yield CSV_HEADER
    for r in with_open_since(queryset, rule).only(*CSV_FIELDS).iterator(chunk_size=2000):
        yield [spreadsheet_safe(value) for value in csv_values(r, directory)]


def csv_values(r, directory):
    return [
            r.pk, r.title_full, r.entity_type, r.native_type, r.integration.name if r.integration else "",
            "; ".join(rule.label for rule in registry.rules() if getattr(r, f"breaks_{rule.key}", False)),
            r.health, open_since_date(r),
            "; ".join(directory.user_names(r.owners)),
            "; ".join(directory.group_names(r.owners_groups)),
            "; ".join(directory.team_names(r.teams)), "; ".join(directory.tag_names(r.tags)),
            "" if r.external_usage is None else r.external_usage,
            "" if r.internal_usage is None else r.internal_usage,
            r.pii, r.verified, r.published, r.stale,
            r.updated_at.isoformat() if r.updated_at else "", r.url,
    ]


def open_since_date(resource):
    """The day (ISO, local) its issue opened; "" without an open interval (the history has not seen it yet)."""
    since = getattr(resource, "open_since", None)
    return timezone.localtime(since).date().isoformat() if since else ""

"""Issue lists: the queryset behind a list page, its CSV export and its bulk actions."""
import json

from django.db.models import F, Q, TextField
from django.db.models.functions import Cast
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


CSV_HEADER = ["id", "title_full", "entity_type", "native_type", "integration", "issues", "health", "open_since",
              "owners", "owning_groups", "teams", "tags", "external_usage", "internal_usage", "pii", "verified",
              "published", "stale", "updated_at", "secoda_url"]
# What a CSV row reads, as plain values (no model instance a row: a million-row export is bounded by Python).
# The four id lists arrive as JSON text, decoded only when not empty (most rows of a list lack some of them).
CSV_VALUES = ("id", "title_full", "entity_type", "native_type", "integration_id", "health", "open_since",
              "owners_json", "owners_groups_json", "teams_json", "tags_json", "external_usage", "internal_usage",
              "pii", "verified", "published", "stale", "updated_at", "url")
ID_LISTS = ("owners", "owners_groups", "teams", "tags")
# Catalog text opened in a spreadsheet must not run as a formula: text starting so gets a leading quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_rows(queryset, directory, rule=None):
    """Rows for a CSV export of `rule`'s list, streamed in chunks so 100,000 rows never sit in memory."""
    yield CSV_HEADER
    rules = [(f"breaks_{r.key}", r.label) for r in registry.rules()]
    columns = CSV_VALUES + tuple(flag for flag, _ in rules)
    as_text = {f"{name}_json": Cast(name, TextField()) for name in ID_LISTS}
    zone = timezone.get_current_timezone()
    rows = with_open_since(queryset, rule).annotate(**as_text).values_list(*columns).iterator(chunk_size=2000)
    for values in rows:
        row = dict(zip(columns, values))
        yield [("'" + value) if value.__class__ is str and value[:1] in FORMULA_STARTS else value
               for value in csv_values(row, rules, directory, zone)]


def id_list(text):
    return json.loads(text) if text and text != "[]" else ()


def csv_values(row, rules, directory, zone):
    return [
            row["id"], row["title_full"], row["entity_type"], row["native_type"],
            directory.integrations.get(row["integration_id"], "") if row["integration_id"] else "",
            "; ".join(label for flag, label in rules if row[flag]),
            row["health"], row["open_since"].astimezone(zone).date().isoformat() if row["open_since"] else "",
            "; ".join(directory.user_names(id_list(row["owners_json"]))),
            "; ".join(directory.group_names(id_list(row["owners_groups_json"]))),
            "; ".join(directory.team_names(id_list(row["teams_json"]))),
            "; ".join(directory.tag_names(id_list(row["tags_json"]))),
            "" if row["external_usage"] is None else row["external_usage"],
            "" if row["internal_usage"] is None else row["internal_usage"],
            row["pii"], row["verified"], row["published"], row["stale"],
            row["updated_at"].isoformat() if row["updated_at"] else "", row["url"],
    ]

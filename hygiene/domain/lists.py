"""Issue lists: the queryset behind a list page, its CSV export and its bulk actions."""
import json

from django.db import connections
from django.db.models import CharField, F, Func, Q, TextField
from django.db.models.functions import Cast, TruncDate

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
# The two times arrive as the local day and as ISO text (`updated_at_iso`): Django reads a PostgreSQL timestamp
# in Python, a third of an export's time.
CSV_VALUES = ("id", "title_full", "entity_type", "native_type", "integration_id", "health", "open_day",
              "owners_json", "owners_groups_json", "teams_json", "tags_json", "external_usage", "internal_usage",
              "pii", "verified", "published", "stale", "updated_at_iso", "url")
ID_LISTS = ("owners", "owners_groups", "teams", "tags")
# Catalog text opened in a spreadsheet must not run as a formula: text starting so gets a leading quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_rows(queryset, directory, rule=None):
    """Rows for a CSV export of `rule`'s list, streamed in chunks so 100,000 rows never sit in memory.
    A million-row export is bounded by Python's work a row, so a row is read as a plain tuple, and what many
    rows share (an owner list's names, a set of broken rules) is worked out once and looked up after."""
    yield CSV_HEADER
    rules = [(f"breaks_{r.key}", r.label) for r in registry.rules()]
    labels = [label for _, label in rules]
    columns = CSV_VALUES + tuple(flag for flag, _ in rules)
    as_text = {f"{name}_json": Cast(name, TextField()) for name in ID_LISTS}
    integrations = {pk: formula_safe(name) for pk, name in directory.integrations.items()}
    owners, groups = SharedText(directory.user_names), SharedText(directory.group_names)
    teams, tags = SharedText(directory.team_names), SharedText(directory.tag_names)
    issues = {}
    updated = IsoTime("updated_at") if connections[queryset.db].vendor == "postgresql" else F("updated_at")
    rows = (with_open_since(queryset, rule)
            .annotate(**as_text, open_day=TruncDate("open_since"), updated_at_iso=updated)
            .values_list(*columns).iterator(chunk_size=2000))
    for (pk, title_full, entity_type, native_type, integration_id, health, open_day, owners_json, groups_json,
         teams_json, tags_json, external_usage, internal_usage, pii, verified, published, stale, updated_at, url,
         *breaks) in rows:
        breaks = tuple(breaks)
        broken = issues.get(breaks)
        if broken is None:
            broken = issues[breaks] = formula_safe("; ".join(label for label, on in zip(labels, breaks) if on))
        yield [
            formula_safe(pk), formula_safe(title_full), formula_safe(entity_type), formula_safe(native_type),
            integrations.get(integration_id, "") if integration_id else "",
            broken, health, open_day.isoformat() if open_day else "",
            owners.get(owners_json), groups.get(groups_json), teams.get(teams_json), tags.get(tags_json),
            "" if external_usage is None else external_usage, "" if internal_usage is None else internal_usage,
            pii, verified, published, stale, iso_text(updated_at), formula_safe(url),
        ]


class IsoTime(Func):
    """On PostgreSQL, a time as the text `datetime.isoformat()` writes for it in UTC
    ("2026-03-04T05:06:07.123456+00:00", no fraction when it is whole), less the "+00:00" (`iso_text` adds it)."""
    output_field = CharField()
    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"


def iso_text(value):
    """A time read with IsoTime (text) or as it is (elsewhere) as `isoformat()` text; "" for none."""
    if value is None:
        return ""
    if value.__class__ is str:
        return (value[:-7] if value.endswith(".000000") else value) + "+00:00"
    return value.isoformat()


def formula_safe(value):
    """Catalog text that a spreadsheet would run as a formula, with a leading quote; other values as they are."""
    return ("'" + value) if value.__class__ is str and value[:1] in FORMULA_STARTS else value


class SharedText:
    """An id list's names joined for a CSV cell, worked out once per distinct list (rows of an export share a
    few owner, team and tag lists), remembering at most `limit` lists of at most `longest` characters so memory
    stays flat (a few MB) whatever the lists."""

    NONE = {"[]": "", None: "", "": ""}  # no list, joined

    def __init__(self, names, limit=5_000, longest=1_000):
        self.names, self.limit, self.longest = names, limit, longest
        self.known = dict(self.NONE)

    def get(self, text):
        joined = self.known.get(text)
        if joined is None:
            joined = formula_safe("; ".join(self.names(json.loads(text))))
            if len(text) <= self.longest:
                if len(self.known) >= self.limit:
                    self.known = dict(self.NONE)
                self.known[text] = joined
        return joined

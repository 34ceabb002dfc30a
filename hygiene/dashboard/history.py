"""A resource's history: every change set that touched it and every sync that saw it change."""
from django.urls import reverse

from catalog_sync.models import ResourceChange

HISTORY_LIMIT = 50
FIELD_LABELS = {"title": "Title", "description": "Description", "definition": "Definition", "owners": "Owners",
                "owners_groups": "Owning groups", "tags": "Tags", "teams": "Teams", "verified": "Verified", "pii": "PII",
                "published": "Published", "stale": "Stale", "archived": "Archived"}


def describe(field, value, directory, limit=None):
    """A field's value in words: names for ids, yes/no for flags, text cut to `limit` characters."""
    if field == "owners":
        return ", ".join(directory.user_names(value or [])) or "none"
    if field == "owners_groups":
        return ", ".join(directory.group_names(value or [])) or "none"
    if field == "tags":
        return ", ".join(directory.tag_names(value or [])) or "none"
    if field == "teams":
        return ", ".join(directory.team_names(value or [])) or "none"
    if field in ("title", "description", "definition"):
        text = value or ""
        return (text[:limit - 1] + "…" if limit and len(text) > limit else text) or "blank"
    return "yes" if value else "no"


def differences(before, after, directory):
    """[(label, before text, after text)] for the fields that differ."""
    rows = []
    for field in FIELD_LABELS:
        if field in after and before.get(field) != after[field]:
            rows.append((FIELD_LABELS[field], describe(field, before.get(field), directory, limit=120),
                         describe(field, after[field], directory, limit=120)))
    return rows


def resource_history(resource, directory):
    """Newest first, at most HISTORY_LIMIT of each kind."""
    from hygiene.bulk.models import ChangeItem

    entries = []
    items = (ChangeItem.objects.filter(resource_id=resource.pk).select_related("change_set__created_by",
                                                                               "change_set__applied_by")
             .order_by("-change_set__created_at")[:HISTORY_LIMIT])
    for item in items:
        change_set = item.change_set
        who = change_set.applied_by or change_set.created_by
        entries.append({
            "at": item.done_at or change_set.applied_at or change_set.created_at, "source": "change set",
            "title": f"Change set #{change_set.pk}: {change_set.summary}",
            "link": reverse("bulk:change-set", args=[change_set.pk]),
            "who": who.get_full_name() or who.username if who else "",
            "status": item.get_status_display() if change_set.status not in ("draft", "discarded")
            else change_set.get_status_display(),
            "changes": differences(item.before, item.after, directory),
        })
    for change in ResourceChange.objects.filter(resource_id=resource.pk)[:HISTORY_LIMIT]:
        before = {field: values[0] for field, values in change.changes.items()}
        after = {field: values[1] for field, values in change.changes.items()}
        entries.append({
            "at": change.at, "source": "sync",
            "title": f"Changed in Secoda, seen by sync #{change.sync_run_id}" if change.sync_run_id
            else "Changed in Secoda", "link": "", "who": "", "status": "",
            "changes": differences(before, after, directory),
        })
    entries.sort(key=lambda entry: entry["at"], reverse=True)
    return entries[:HISTORY_LIMIT]

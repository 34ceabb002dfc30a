"""The issue history of one part of the catalog (a team, an owner, an integration), and the median time to fix of
every team, owner or integration at once. Resources are chosen by a subquery on their refs or integration, and
a breakdown page's medians are one grouped query: never a query per row or per resource."""
from django.db.models import FilteredRelation, Q

from catalog_sync.models import Resource, ResourceRef
from hygiene.lifecycle import queries
from hygiene.lifecycle.models import IssueInterval

TEAM, OWNER, INTEGRATION = "team", "owner", "integration"
NO_TEAM = "none"  # the team filter's "No team", and the snapshots' key for it
OWNER_KINDS = {"user": ResourceRef.OWNER, "group": ResourceRef.OWNER_GROUP}


def owner_ref(key):
    """An owner key ("user:<id>", "group:<id>") -> (ResourceRef kind, id), or None for anything else."""
    prefix, _, ref_id = (key or "").partition(":")
    if prefix not in OWNER_KINDS or not ref_id:
        return None
    return OWNER_KINDS[prefix], ref_id


def resource_ids(scope, key):
    """The resources of a team ("none": in no team), an owner ("user:<id>", "group:<id>") or an integration, as
    a subquery (values of ids), and whether they are the ids to exclude rather than to keep."""
    if scope == TEAM:
        if key == NO_TEAM:
            return ResourceRef.objects.filter(kind=ResourceRef.TEAM).values("resource_id"), True
        return ResourceRef.objects.filter(kind=ResourceRef.TEAM, ref_id=key).values("resource_id"), False
    if scope == OWNER:
        kind, ref_id = owner_ref(key)
        return ResourceRef.objects.filter(kind=kind, ref_id=ref_id).values("resource_id"), False
    if scope == INTEGRATION:
        return Resource.objects.filter(integration_id=key).values("pk"), False
    raise ValueError(f"Unknown scope {scope!r}")


def intervals_in(scope, key):
    """The IssueInterval rows of a team's, an owner's or an integration's resources."""
    ids, exclude = resource_ids(scope, key)
    intervals = IssueInterval.objects.all()
    return intervals.exclude(resource_id__in=ids) if exclude else intervals.filter(resource_id__in=ids)


def median_fix_by(scope, now=None):
    """Breakdown key -> median seconds to fix over the last 90 days (fixed, start known), for every team (with
    "none"), owner ("user:<id>", "group:<id>") or integration ("" for none): one grouped query. By the resources'
    teams and owners today; a resource in two teams counts for both."""
    fixed = queries.recently_fixed(now=now)
    if scope == TEAM:
        # A LEFT JOIN to the resource's team refs: the intervals of resources in no team group under NULL.
        teams = fixed.alias(team=FilteredRelation(
            "resource__refs", condition=Q(resource__refs__kind=ResourceRef.TEAM)))
        return {team or NO_TEAM: median for (team,), median in queries.grouped_medians(teams, "team__ref_id").items()}
    if scope == OWNER:
        owned = fixed.filter(resource__refs__kind__in=list(OWNER_KINDS.values()))
        prefix = {kind: name for name, kind in OWNER_KINDS.items()}
        return {f"{prefix[kind]}:{ref_id}": median for (kind, ref_id), median in
                queries.grouped_medians(owned, "resource__refs__kind", "resource__refs__ref_id").items()}
    if scope == INTEGRATION:
        return {integration or "": median for (integration,), median in
                queries.grouped_medians(fixed, "resource__integration_id").items()}
    raise ValueError(f"Unknown scope {scope!r}")

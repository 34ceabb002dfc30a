"""What stewards do with suggestions: list them with the issue lists' filters, accept them as a change set (the
same preview, apply, progress, undo and audit as any bulk edit), reject them for good. Views and commands call
these; computing them is `hygiene.suggestions.compute`."""
from collections import defaultdict

from django.db import connection, transaction

from catalog_sync.models import Resource
from hygiene.bulk import services as bulk
from hygiene.bulk.edits import EDITABLE_FIELDS, current_values, planned_change
from hygiene.dashboard.filtersets import ResourceFilterSet, applied_query
from hygiene.domain.directory import Directory
from hygiene.domain.lists import issue_queryset
from hygiene.rules import builtin_filter, in_scope
from hygiene.suggestions import compute
from hygiene.suggestions.filtersets import SuggestionFilterSet
from hygiene.suggestions.models import RejectedSuggestion, Suggestion

NothingToChange = bulk.NothingToChange


class StaleSuggestion(Exception):
    """The resource no longer breaks the rule (fixed since the suggestions were computed)."""


def resource_filterset(rule, data):
    """The issue lists' filters over the rule's open issues (snoozed ones left out, as on its list)."""
    return ResourceFilterSet(data, queryset=issue_queryset(rule), rule=rule)


def suggestions_of(rule, resources):
    """The rule's suggestions for the resources `resources` (a ResourceFilterSet) keeps."""
    return Suggestion.objects.filter(kind=Suggestion.KIND_OF_RULE[rule],
                                     resource__in=resources.qs.order_by().values("pk"))


def suggestion_filterset(rule, data, resources):
    """Those suggestions filtered by confidence and evidence from `data`."""
    return SuggestionFilterSet(data, queryset=suggestions_of(rule, resources), kind=Suggestion.KIND_OF_RULE[rule])


def edit_for(accepted):
    """The bulk edit that applies accepted (kind, value) pairs to one resource, most confident first: every
    suggested owner is added; the first suggested description is set where the description is still blank."""
    edit = {}
    owners = [value for kind, value in accepted if kind == Suggestion.OWNER]
    if owners:
        edit["owners"] = {"mode": "add",
                          "users": [value.partition(":")[2] for value in owners if value.startswith("user:")],
                          "groups": [value.partition(":")[2] for value in owners if value.startswith("group:")]}
    descriptions = [value for kind, value in accepted if kind == Suggestion.DESCRIPTION]
    if descriptions:
        edit["description"] = {"text": descriptions[0], "only_blank": True}
    return edit


def accept(user, suggestions, summary, rule, filter_query="", filter_label="", details=None):
    """A draft change set (the preview) that applies `suggestions` (a queryset) to their resources, with each
    resource's values before and after. Raises NothingToChange when none would change anything."""
    chosen = defaultdict(list)
    for resource_id, kind, value in suggestions.order_by("-confidence", "id").values_list("resource_id", "kind",
                                                                                           "value"):
        chosen[resource_id].append((kind, value))
    resources = Resource.objects.filter(pk__in=suggestions.order_by().values("resource_id"))
    planned = {}
    for resource in resources.only("id", *EDITABLE_FIELDS).iterator(chunk_size=2000):
        before, after = planned_change(current_values(resource), edit_for(chosen[resource.pk]))
        if after:
            planned[resource.pk] = (before, after)
    accepted = sum(len(pairs) for pairs in chosen.values())
    return bulk.build_change_set(user, resources, edit={"accepted_suggestions": {**(details or {}),
                                                                                  "suggestions": accepted}},
                                 summary=summary, filter_query=filter_query, filter_label=filter_label, rule=rule,
                                 planned=planned)


def accept_one(user, suggestion):
    """The change set preview for one suggestion. Raises StaleSuggestion when its resource no longer breaks
    the rule."""
    if not in_scope().filter(builtin_filter(suggestion.rule), pk=suggestion.resource_id).exists():
        raise StaleSuggestion()
    resource = suggestion.resource
    title = resource.title or resource.pk
    if suggestion.kind == Suggestion.OWNER:
        summary = f"Accept the suggested owner of {title}: {Directory().owner_label(suggestion.value)}"
    else:
        summary = f"Accept the suggested description of {title}"
    return accept(user, Suggestion.objects.filter(pk=suggestion.pk), summary, suggestion.rule,
                  filter_label=f"the suggestion for {resource.title_full or resource.pk}",
                  details={"kind": suggestion.kind, "confidence": suggestion.confidence})


def accept_matching(user, rule, resources, suggestions, min_confidence):
    """The change set preview for every suggestion of `suggestions` (a bound, valid SuggestionFilterSet over
    `resources`, a bound, valid ResourceFilterSet) with a confidence of at least `min_confidence`."""
    kind = Suggestion.KIND_OF_RULE[rule]
    chosen = suggestions.qs.filter(confidence__gte=min_confidence)
    count = chosen.count()
    summary = f"Accept {count:,} suggested {kind}{'s' if count != 1 else ''} (confidence ≥ {min_confidence})"
    label = "; ".join(part for part in (
        f"Suggested {kind}s, confidence ≥ {min_confidence}", resources.describe(), suggestions.describe()) if part)
    query = "&".join(part for part in (applied_query(resources), applied_query(suggestions)) if part)
    return accept(user, chosen, summary, rule, filter_query=query, filter_label=label,
                  details={"kind": kind, "min_confidence": min_confidence})


@transaction.atomic
@transaction.atomic
def reject(suggestion, user):
    """Remember the steward's no, and drop the suggestion: no later computation suggests that value for that
    resource again. Waits for a computation running now, which would otherwise write the suggestion back."""
    with connection.cursor() as cursor:
        compute.hold_lock(cursor)
    RejectedSuggestion.objects.get_or_create(
        resource_id=suggestion.resource_id, kind=suggestion.kind, value_key=suggestion.value_key,
        defaults={"value": suggestion.value, "reason": suggestion.reason, "rejected_by": user})
    Suggestion.objects.filter(resource_id=suggestion.resource_id, kind=suggestion.kind,
                              value_key=suggestion.value_key).delete()

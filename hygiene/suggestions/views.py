from django.contrib import messages
from django.http import Http404, HttpResponseRedirect, QueryDict
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from hygiene.dashboard.filtersets import ResourceFilterSet, applied_query
from hygiene.dashboard.views import (PER_PAGE_CHOICES, checked_filterset, gone_rule, kept_params, paginate,
                                     safe_next, without_blank_filters)
from hygiene.domain import lists
from hygiene.domain.directory import Directory
from hygiene.domain.snapshots import latest_snapshot
from hygiene.roles import is_steward, steward_required
from hygiene.rulebook import registry
from hygiene.suggestions import services
from hygiene.suggestions.filtersets import SuggestionFilterSet
from hygiene.suggestions.forms import AcceptMatchingForm
from hygiene.suggestions.models import Suggestion
from hygiene.suggestions.tables import SuggestionTable

DEFAULT_ACCEPT_CONFIDENCE = 80


def rule_in_force(rule):
    """The rule's kind of suggestion; 404 (saying why) unless the rule is unowned or undocumented and in force."""
    if rule not in Suggestion.KIND_OF_RULE:
        raise Http404("Suggestions are made for the unowned and undocumented rules only.")
    if registry.get(rule) is None:
        raise Http404(gone_rule(rule))
    return Suggestion.KIND_OF_RULE[rule]


def suggestion_of_rule_in_force(pk):
    suggestion = get_object_or_404(Suggestion.objects.select_related("resource"), pk=pk)
    rule_in_force(suggestion.rule)
    return suggestion


def suggestion_list(request, rule):
    kind = rule_in_force(rule)
    shorter = without_blank_filters(request)
    if shorter:
        return shorter
    snapshot = latest_snapshot()  # brings stored scores up to date when a snooze ran out, as the issue lists do
    resources = checked_filterset(request, ResourceFilterSet, lists.issue_queryset(rule), rule=rule)
    suggestions = checked_filterset(request, SuggestionFilterSet, services.suggestions_of(rule, resources), kind=kind)
    steward = is_steward(request.user)
    queryset = suggestions.qs.select_related("resource", "resource__integration").defer(
        *(f"resource__{name}" for name in lists.DEFERRED))
    table = SuggestionTable(queryset, directory=Directory(), steward=steward, csrf_token=get_token(request),
                            next_url=request.get_full_path())
    per_page = paginate(request, table)
    filter_query = "&".join(part for part in (applied_query(resources), applied_query(suggestions)) if part)
    accept_query = QueryDict(filter_query, mutable=True)
    chosen_confidence = accept_query.pop("min_confidence", [None])[0]
    rule_def = registry.get(rule)
    return render(request, "suggestions/list.html", {
        "rule": rule, "rule_label": rule_def.label, "kind": kind,  # "owner" or "description"
        "resources": resources, "suggestions": suggestions, "table": table, "snapshot": snapshot,
        "open_count": snapshot.totals.get(rule), "suggested_count": snapshot.totals.get(f"suggested_{rule}"),
        "filter_summary": "; ".join(part for part in (resources.describe(), suggestions.describe()) if part),
        "filter_query": filter_query, "list_query": applied_query(resources), "kept_params": kept_params(filter_query, lists.SNOOZED_HIDE),
        "per_page_choices": PER_PAGE_CHOICES, "per_page": per_page, "can_edit": steward,
        "accept_form": AcceptMatchingForm(initial={
            "filter_query": accept_query.urlencode(),
            "min_confidence": chosen_confidence or DEFAULT_ACCEPT_CONFIDENCE}),
        "other_rules": [(key, registry.get(key).label) for key in Suggestion.KIND_OF_RULE if registry.get(key)],
    })


def to_preview(request, change_set):
    messages.info(request, "Here is what accepting changes. Nothing is sent to Secoda until you apply it.")
    return redirect("bulk:change-set", pk=change_set.pk)


def back_to(rule, query=""):
    path = reverse("suggestions:list", args=[rule])
    return f"{path}?{query}" if query else path


@require_POST
@steward_required
def accept_matching(request, rule):
    """"Accept every suggestion with confidence ≥ X matching this filter": one change set, then its preview."""
    kind = rule_in_force(rule)
    form = AcceptMatchingForm(request.POST)
    query = request.POST.get("filter_query", "")
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, f"Nothing accepted. {' '.join(errors)}")
        return HttpResponseRedirect(back_to(rule, query))
    data = QueryDict(form.cleaned_data["filter_query"], mutable=True)
    data.pop("min_confidence", None)  # the form's threshold is the one that counts
    resources = services.resource_filterset(rule, data)
    suggestions = services.suggestion_filterset(rule, data, resources)
    if not resources.is_valid() or not suggestions.is_valid():
        # Never widen a selection silently: a filter that no longer holds accepts nothing.
        messages.error(request, "Nothing accepted: this filter is no longer valid (a value it names may have left "
                                "the catalog). Filter the list again, then accept.")
        return HttpResponseRedirect(back_to(rule))
    try:
        change_set = services.accept_matching(request.user, rule, resources, suggestions,
                                              form.cleaned_data["min_confidence"])
    except services.NothingToChange:
        messages.error(request, f"Nothing to accept: no suggested {kind} with a confidence of at least "
                                f"{form.cleaned_data['min_confidence']} matches this filter, or they would change "
                                f"nothing.")
        return HttpResponseRedirect(back_to(rule, query))
    return to_preview(request, change_set)


@require_POST
@steward_required
def accept_one(request, pk):
    suggestion = suggestion_of_rule_in_force(pk)
    try:
        change_set = services.accept_one(request.user, suggestion)
    except services.StaleSuggestion:
        messages.warning(request, "This resource has been fixed since the suggestion was made; nothing to accept.")
        return HttpResponseRedirect(back_to(suggestion.rule))
    except services.NothingToChange:
        messages.warning(request, "Accepting this suggestion would change nothing.")
        return HttpResponseRedirect(back_to(suggestion.rule))
    return to_preview(request, change_set)


@require_POST
@steward_required
def reject(request, pk):
    suggestion = suggestion_of_rule_in_force(pk)
    services.reject(suggestion, request.user)
    messages.success(request, f"Rejected: this {suggestion.kind} will not be suggested for "
                              f"{suggestion.resource.title_full or suggestion.resource_id} again.")
    return HttpResponseRedirect(safe_next(request, back_to(suggestion.rule)))

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from catalog_sync.models import Resource
from hygiene.bulk import services
from hygiene.bulk.edits import current_values, planned_change
from hygiene.bulk.forms import BulkEditForm, Lookup, ResourceEditForm
from hygiene.bulk.models import ChangeItem, ChangeSet
from hygiene.domain.directory import Directory
from hygiene.dashboard.filtersets import filterset_from_query
from hygiene.dashboard.history import FIELD_LABELS, describe, differences
from hygiene.domain.lists import SNOOZED_ONLY, issue_queryset
from hygiene.roles import is_steward, steward_required
from hygiene.rulebook import registry
from hygiene.rules import in_scope

SELECTION_FIELDS = ("select_all", "filter_query", "rule", "snoozed")


class Selection:
    """What the steward picked on a list: ticked ids, or "all N matching this filter", which is
    re-run here from the filter itself (ids from the page are not trusted for that)."""

    def __init__(self, data):
        self.select_all = data.get("select_all") == "1"
        self.filter_query = data.get("filter_query", "")
        self.rule = data.get("rule") if data.get("rule") in registry.keys() else ""
        self.snoozed = data.get("snoozed", "")
        self.ids = [pk for pk in data.getlist("pk") if pk][:10_000]

    def resources(self):
        if self.select_all:
            base = issue_queryset(self.rule or None, snoozed=SNOOZED_ONLY if self.snoozed == SNOOZED_ONLY else "hide")
            filtered = filterset_from_query(self.filter_query, queryset=base, rule=self.rule or None).qs
            return Resource.objects.filter(pk__in=filtered.order_by().values("pk"))
        return in_scope().filter(pk__in=self.ids)

    def label(self):
        if not self.select_all:
            return ""
        filterset = filterset_from_query(self.filter_query)
        rule = registry.labels().get(self.rule, "any issue")
        described = filterset.describe()
        return f"{rule}{'; ' + described if described else ''}"

    def hidden(self):
        return {"select_all": "1" if self.select_all else "", "filter_query": self.filter_query, "rule": self.rule,
                "snoozed": self.snoozed}

    @property
    def empty(self):
        return not self.select_all and not self.ids


@require_POST
@steward_required
def edit(request):
    """The edit form for a selection; submitting it builds the preview."""
    selection = Selection(request.POST)
    back = reverse("dashboard:rule", args=[selection.rule]) if selection.rule else reverse("dashboard:issues")
    if selection.filter_query:
        back += f"?{selection.filter_query}"
    if selection.empty:
        messages.error(request, "Tick at least one resource, or choose “select all matching”, before editing.")
        return redirect(back)
    lookup = Lookup()
    resources = selection.resources()
    count = resources.count()
    if request.POST.get("step") == "preview":
        form = BulkEditForm(request.POST, lookup=lookup)
        if form.is_valid():
            try:
                change_set = services.build_change_set(
                    request.user, resources, form.cleaned_data["edit"], form.cleaned_data["summary"],
                    filter_query=selection.filter_query if selection.select_all else "",
                    filter_label=selection.label(), rule=selection.rule)
            except services.NothingToChange as exc:
                messages.error(request, f"Nothing to preview. {exc}")
            else:
                return redirect("bulk:change-set", pk=change_set.pk)
    else:
        form = BulkEditForm(lookup=lookup)
    directory = Directory()
    return render(request, "bulk/edit.html", {
        "form": form, "selection": selection, "count": count, "back": back,
        "people_names": sorted(set(directory.users.values())) + sorted(f"{g} (group)" for g in directory.groups.values()),
        "tag_names": sorted(set(directory.tags.values())), "team_names": sorted(set(directory.teams.values())),
    })


@steward_required
def edit_resource(request):
    """One resource's edit, from its page: a form filled with its values; the change set is the preview."""
    resource = get_object_or_404(in_scope().select_related("integration"),
                                 pk=request.POST.get("resource") or request.GET.get("resource") or "")
    directory, lookup = Directory(), Lookup()
    if request.method == "POST":
        form = ResourceEditForm(request.POST, lookup=lookup, resource_id=resource.pk)
        valid = form.is_valid()
        if "changed" in form.cleaned_data:  # the snapshot was good: say so even if a name is wrong too
            conflicts = form.conflicts(resource)
            if conflicts:
                # Shown what Secoda holds now; the steward's text stays in the form and a new snapshot lets
                # them save it once they have checked.
                now = ResourceEditForm.initial_for(resource, directory)
                held = "; ".join(f"{form.fields[name].label}: “{now[name] or 'nothing'}”" for name in conflicts)
                messages.warning(request, f"Changed in Secoda since you opened this form, which now holds {held}. "
                                          f"Your text is kept below: check it and save again.")
                data = request.POST.copy()
                data["shown"] = now["shown"]
                form = ResourceEditForm(data, lookup=lookup, resource_id=resource.pk)
                form.is_valid()
                return render_edit(request, form, resource, directory)
        if valid:
            edit = form.cleaned_data["edit"]
            before, after = planned_change(current_values(resource), edit)
            if not after:
                messages.info(request, "Nothing changed: the form holds the values the resource already has.")
                return redirect("dashboard:resource", pk=resource.pk)
            summary = f"Edit {resource.title or resource.pk} (" + ", ".join(
                label.lower() for label, _, _ in differences(before, after, directory)) + ")"
            change_set = services.build_change_set(request.user, in_scope().filter(pk=resource.pk), edit, summary,
                                                   filter_label=f"the resource {resource.title_full or resource.pk}")
            return redirect("bulk:change-set", pk=change_set.pk)
    else:
        form = ResourceEditForm(initial=ResourceEditForm.initial_for(resource, directory), lookup=lookup,
                                resource_id=resource.pk)
    return render_edit(request, form, resource, directory)


def render_edit(request, form, resource, directory):
    return render(request, "bulk/edit_resource.html", {
        "form": form, "resource": resource,
        "people_names": sorted(set(directory.users.values())) + sorted(f"{g} (group)" for g in directory.groups.values()),
        "tag_names": sorted(set(directory.tags.values())), "team_names": sorted(set(directory.teams.values())),
    })


def describe_values(values, directory):
    """Field -> readable value, for the before/after columns (the whole description)."""
    return {FIELD_LABELS[field]: describe(field, value, directory) for field, value in values.items()}


def change_set_detail(request, pk):
    change_set = get_object_or_404(ChangeSet.objects.select_related("created_by", "applied_by", "undo_of"), pk=pk)
    status_filter = request.GET.get("status", "")
    items = change_set.items.all()
    if status_filter in dict(ChangeItem.STATUSES):
        items = items.filter(status=status_filter)
    page = Paginator(items, 100).get_page(request.GET.get("page"))
    directory = Directory()
    rows = [{"item": item, "before": describe_values(item.before, directory),
             "after": describe_values(item.after, directory)} for item in page.object_list]
    stats = services.progress(change_set)
    return render(request, "bulk/change_set.html", {
        "change_set": change_set, "rows": rows, "page": page, "stats": stats, "status_filter": status_filter,
        "statuses": [(key, label, stats[key]) for key, label in ChangeItem.STATUSES if stats[key]],
        "estimate": services.estimate(stats["total"]),
        "already": max(0, change_set.selected - stats["total"]),
        "can_edit": is_steward(request.user),
        "undone_by": change_set.undone_by.exclude(status=ChangeSet.DISCARDED).first(),
    })


def change_set_progress(request, pk):
    change_set = get_object_or_404(ChangeSet, pk=pk)
    return JsonResponse(services.progress(change_set))


@require_POST
@steward_required
def change_set_apply(request, pk):
    change_set = get_object_or_404(ChangeSet, pk=pk)
    if services.submit(change_set, request.user):
        messages.success(request, "Applying the change set. You can leave this page; it keeps running.")
    else:
        messages.warning(request, "This change set was already applied or discarded.")
    return redirect("bulk:change-set", pk=pk)


@require_POST
@steward_required
def change_set_discard(request, pk):
    updated = ChangeSet.objects.filter(pk=pk, status=ChangeSet.DRAFT).update(status=ChangeSet.DISCARDED)
    if updated:
        messages.success(request, "Discarded: nothing was sent to Secoda.")
    return redirect("bulk:change-sets")


@require_POST
@steward_required
def change_set_retry(request, pk):
    change_set = get_object_or_404(ChangeSet, pk=pk)
    count = services.retry_failed(change_set, request.user)
    if count:
        messages.success(request, f"Retrying {count:,} resource{'s' if count != 1 else ''}.")
    else:
        messages.warning(request, "Nothing to retry.")
    return redirect("bulk:change-set", pk=pk)


@require_POST
@steward_required
def change_set_undo(request, pk):
    change_set = get_object_or_404(ChangeSet, pk=pk)
    if not change_set.is_finished:
        return HttpResponseBadRequest("Only a finished change set can be undone.")
    try:
        undo = services.build_undo(change_set, request.user)
    except services.AlreadyUndone as exc:
        messages.info(request, f"This change set has an undo already (change set #{exc.undo.pk}).")
        return redirect("bulk:change-set", pk=exc.undo.pk)
    except services.NothingToChange:
        messages.error(request, "Nothing to undo: no resource of this change set was applied.")
        return redirect("bulk:change-set", pk=pk)
    messages.info(request, "Here is what undoing puts back. Apply it to send it to Secoda.")
    return redirect("bulk:change-set", pk=undo.pk)


def change_sets(request):
    page = Paginator(ChangeSet.objects.exclude(status=ChangeSet.DISCARDED)
                     .select_related("created_by", "applied_by", "undo_of").annotate(
                         changing=Count("items"),
                         # An undo that was applied (not a draft, not discarded) marks what it undid.
                         undone_by_id=Subquery(ChangeSet.objects.filter(undo_of=OuterRef("pk"))
                                               .exclude(status__in=(ChangeSet.DRAFT, ChangeSet.DISCARDED))
                                               .values("pk")[:1]))
                     .order_by("-created_at", "-id"),
                     50).get_page(request.GET.get("page"))
    return render(request, "bulk/change_sets.html", {"page": page, "steward": is_steward(request.user)})

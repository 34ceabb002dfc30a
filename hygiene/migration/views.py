"""The "Migrate" pages: match two integrations (anyone who reads), preview the copy as a change set (stewards),
and a stored migration with its end check. `services` does the work; these collect, check and render."""
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from catalog_sync.models import Integration
from hygiene.bulk import services as bulk
from hygiene.migration import services
from hygiene.migration.forms import PICK_PREFIX, CopyForm, MatchForm, match_query, picks_from
from hygiene.migration.matching import format_mapping, type_order
from hygiene.migration.models import MigrationPlan
from hygiene.roles import is_steward, steward_required

AMBIGUOUS_SHOWN = 300  # ambiguous old resources offered a choice on the page; the rest are skipped
UNMATCHED_SHOWN = 50


def integrations():
    return list(Integration.objects.present().order_by("name", "id"))


def matching_context(matching, picks=None):
    """What the page shows of a matching: counts by type with totals, the ambiguous choices (with the steward's
    or the suggested pick selected), a sample of the unmatched, the end check."""
    counts = matching.counts()
    totals = {key: sum(row[key] for _, row in counts) for key in
              ("matched", "ambiguous_old", "ambiguous_new", "unmatched_old", "unmatched_new")}
    choices, shown = [], 0
    for group in matching.ambiguous:
        for node in group.old:
            if shown >= AMBIGUOUS_SHOWN:
                break
            shown += 1
            picked = picks.get(node.id, "") if picks is not None else group.suggested.get(node.id, "")
            choices.append({
                "old": node, "old_path": ".".join(matching.old_paths[node.id]), "type": group.entity_type,
                "field": f"{PICK_PREFIX}{node.id}", "picked": picked, "suggested": group.suggested.get(node.id),
                "candidates": [{"node": other, "path": ".".join(matching.new_paths[other.id])} for other in group.new],
            })
    ambiguous_old = totals["ambiguous_old"]

    def sample(nodes, paths):
        rows = sorted(nodes, key=lambda n: (type_order(n.entity_type), ".".join(paths[n.id]).casefold()))
        return [{"node": node, "path": ".".join(paths[node.id])} for node in rows[:UNMATCHED_SHOWN]]

    return {
        "counts": counts, "totals": totals, "choices": choices, "choices_cut": max(0, ambiguous_old - shown),
        "unmatched_old": sample(matching.unmatched_old, matching.old_paths),
        "unmatched_new": sample(matching.unmatched_new, matching.new_paths),
        "check": services.end_check(matching, picks),
    }


def migrate(request):
    """Choose the integrations and renames and see how they match; stewards go on to choose what to copy."""
    form = MatchForm(request.GET or None, integrations=integrations())
    context = {"form": form, "copy_form": CopyForm(), "can_edit": is_steward(request.user)}
    if form.is_bound and form.is_valid():
        matching = services.match_integrations(form.cleaned_data["old"], form.cleaned_data["new"],
                                               form.cleaned_data["renames"])
        context.update(matching_context(matching), old=form.old_integration, new=form.new_integration,
                       query=form.query())
    return render_page(request, context)


@require_POST
@steward_required
def preview(request):
    """Build the copy's change set and show it on the change set page; on a problem, the page again with the
    steward's choices kept and the problem said."""
    form = MatchForm(request.POST, integrations=integrations())
    copy_form = CopyForm(request.POST)
    picks = picks_from(request.POST)
    context = {"form": form, "copy_form": copy_form, "can_edit": True, "not_done": True}
    if not form.is_valid():
        copy_form.is_valid()
        return render_page(request, context)
    old, new, renames = form.old_integration, form.new_integration, form.cleaned_data["renames"]
    matching = services.match_integrations(old.pk, new.pk, renames)
    context.update(matching_context(matching, picks), old=old, new=new, query=form.query())
    if not copy_form.is_valid():
        return render_page(request, context)
    try:
        plan = services.build_migration(request.user, old, new, renames, picks,
                                        copy_form.cleaned_data["fields_to_copy"], copy_form.overwrite,
                                        matching=matching)
    except services.PickError as exc:
        context["pick_errors"] = exc.errors
        return render_page(request, context)
    except bulk.NothingToChange:
        messages.error(request, "Nothing to preview: every matched resource of the new integration already has "
                                "what the old one has for these fields (or the old one has nothing to copy).")
        return render_page(request, context)
    return redirect("bulk:change-set", pk=plan.change_set_id)


def render_page(request, context):
    context.setdefault("plans", MigrationPlan.objects.select_related(
        "old_integration", "new_integration", "created_by", "change_set")[:20])
    return render(request, "migration/migrate.html", context)


def plan_detail(request, pk):
    """A migration as it was set up, its change set, and the end check against the mirror as it is now."""
    plan = get_object_or_404(MigrationPlan.objects.select_related(
        "old_integration", "new_integration", "created_by", "change_set"), pk=pk)
    renames = [(old, new) for old, new in plan.renames]
    matching = services.match_integrations(plan.old_integration_id, plan.new_integration_id, renames)
    context = matching_context(matching, services.usable_picks(matching, plan.picks))
    return render(request, "migration/plan.html", {
        **context, "plan": plan, "old": plan.old_integration, "new": plan.new_integration,
        "renames_text": format_mapping(renames),
        "again": match_query(plan.old_integration_id, plan.new_integration_id, renames),
        "copied": [services.COPY_LABELS[field] for field in services.COPYABLE if field in plan.fields],
        "can_edit": is_steward(request.user),
    })

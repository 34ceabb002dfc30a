"""The rule pages: every rule with its count, the builder (preview, save), switching rules on and off and deleting
custom ones. `services` checks and saves; these views only collect, place messages and redirect."""
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from hygiene.dashboard.filtersets import filterset_from_query
from hygiene.domain.directory import Directory
from hygiene.domain.snapshots import latest_snapshot
from hygiene.roles import is_steward, steward_required
from hygiene.rulebook import conditions, registry, services
from hygiene.rulebook.forms import RuleBuilder, describe_condition, operator_map, ref_names
from hygiene.rulebook.models import Rule

MAX_SCOPE_PARAM = 2000


def rule_rows(rows, names, totals, scopes):
    """What the list shows of each rule: its definition in words, its scope in words (`scopes` keeps each scope
    described once a request: describing one reads its filters' choices) and today's count."""
    shown = []
    for rule in rows:
        if rule.scope and rule.scope not in scopes:
            scopes[rule.scope] = filterset_from_query(rule.scope).describe() or "(filters no longer valid)"
        shown.append({
            "rule": rule, "in_force": rule.enabled and not rule.deleted,
            "flags": rule.explanation if rule.builtin else describe_condition(rule.clauses, rule.match, names),
            "explanation": "" if rule.builtin or rule.explanation == describe_condition(
                rule.clauses, rule.match, names) else rule.explanation,
            "scope": scopes.get(rule.scope, "") if rule.scope else "",
            "count": totals.get(rule.key) if rule.enabled and not rule.deleted else None,
        })
    return shown


def rule_list(request):
    services.ensure_builtin_rows()
    everything = registry.everything()
    names = ref_names()[0] if any(rule.clauses for rule in everything) else {}
    totals = latest_snapshot().totals
    live = [rule for rule in everything if not rule.deleted]
    scopes = {}
    deleted = rule_rows([rule for rule in everything if rule.deleted], names, totals, scopes)
    if deleted:
        when = dict(Rule.objects.filter(deleted_at__isnull=False).values_list("key", "deleted_at"))
        for row in deleted:
            row["deleted_at"] = when.get(row["rule"].key)
    return render(request, "rulebook/rules.html", {
        "rules": rule_rows(live, names, totals, scopes), "deleted": deleted,
        "can_edit": is_steward(request.user),
    })


def builder_context(request, builder, preview=None):
    names, suggestions = ref_names()
    builder.add_hints(names)
    directory = Directory() if preview else None
    if preview:
        preview["teams"] = [(directory.teams.get(row["ref_id"], f"Unknown team {row['ref_id'][:8]}"), row["n"])
                            for row in preview["by_team"]]
    return {
        "builder": builder, "form": builder.form, "rule": builder.rule, "filterset": builder.filterset,
        "preview": preview, "suggestions": suggestions, "operator_map": operator_map(),
        "max_clauses": conditions.MAX_CLAUSES,
        "definition": registry.known(builder.rule.key) if builder.rule is not None else None,
        "errors": builder.error_list() if builder.has_errors else [],
    }


@steward_required
def rule_create(request):
    return builder_page(request, rule=None)


@steward_required
def rule_edit(request, pk):
    rule = get_object_or_404(Rule.objects.live(), pk=pk)
    return builder_page(request, rule=rule)


def builder_page(request, rule):
    if request.method != "POST":
        scope = request.GET.get("scope", "")[:MAX_SCOPE_PARAM] if rule is None else None
        builder = RuleBuilder(rule=rule, scope=scope)
        if rule is None and scope:
            try:
                services.clean_scope(scope)
            except services.RuleError as exc:
                builder.scope_error = exc.errors["scope"]
        return render(request, "rulebook/builder.html", builder_context(request, builder))
    # "save" saves; "add" adds a clause row; anything else (Preview, or a tampered value) saves nothing.
    action = request.POST.get("action")
    builder = RuleBuilder(rule=rule, data=request.POST, extra_row=action == "add")
    if action == "add":  # one more clause row; nothing checked yet
        return render(request, "rulebook/builder.html", builder_context(request, builder))
    cleaned = builder.clean()
    if cleaned is None:
        what = "saved" if action == "save" else "previewed"
        return render(request, "rulebook/builder.html", builder_context(request, builder) | {"not_done": what})
    if action != "save":
        preview = None if builder.builtin else services.preview(cleaned)
        return render(request, "rulebook/builder.html", builder_context(request, builder, preview=preview))
    saved = services.save(cleaned, request.user, rule)
    if not saved.enabled:
        messages.success(request, f"Saved the rule “{saved.name}”. It is switched off, so nothing counts it "
                                  "until it is switched on.")
        return HttpResponseRedirect(reverse("rulebook:rules"))
    verb = "Saved" if rule is None else "Updated"
    messages.success(request, f"{verb} the rule “{saved.name}”. The overview, the issue lists and the health "
                              "scores count it now.")
    return HttpResponseRedirect(reverse("dashboard:rule", args=[saved.key]))


@require_POST
@steward_required
def rule_toggle(request, pk):
    services.ensure_builtin_rows()
    rule = get_object_or_404(Rule.objects.live(), pk=pk)
    switched_on = not rule.enabled
    services.save({"enabled": switched_on}, request.user, rule)
    if switched_on:
        messages.success(request, f"Switched on “{rule.name}”: the overview, the issue lists and the health scores "
                                  "count it again.")
    else:
        messages.success(request, f"Switched off “{rule.name}”: the overview, the issue lists and the health scores "
                                  "no longer count it. Its past counts stay in the trends.")
    return HttpResponseRedirect(reverse("rulebook:rules"))


@require_POST
@steward_required
def rule_delete(request, pk):
    rule = get_object_or_404(Rule.objects.live(), pk=pk)
    try:
        services.delete(rule)
    except services.RuleError as exc:
        messages.error(request, f"Not deleted: {next(iter(exc.errors.values()))}")
    else:
        messages.success(request, f"Deleted the rule “{rule.name}”. Nothing counts it any more; its past counts "
                                  "stay in the trends, under “Deleted” below.")
    return HttpResponseRedirect(reverse("rulebook:rules"))


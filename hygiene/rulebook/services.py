"""Checking, saving and previewing rules: what the builder page and the import both go through.

`clean_definition` refuses what cannot run, with a message per field ("clauses.2" for the third clause), so a
saved rule always compiles. `preview` counts what a definition would flag now, by integration and team, with a
sample, in a few aggregate queries. `save` writes a rule and takes a snapshot, so the overview, lists and
health scores count it at once."""
import re
from collections import Counter

from django.db import transaction
from django.db.models import Count
from django.db.models.functions import Lower
from django.http import QueryDict
from django.utils import timezone
from django.utils.text import slugify

from catalog_sync.models import Integration
from hygiene.dashboard.filtersets import (
    HISTORY_FILTERS, ResourceFilterSet, applied_query, filterset_from_query,
)
from hygiene.dashboard.models import Snapshot
from hygiene.domain.snapshots import take_snapshot
from hygiene.rulebook import conditions, registry
from hygiene.rulebook.models import Rule
from hygiene.rules import RULES as BUILTIN_KEYS, in_scope

MAX_WEIGHT = 100
MAX_SLA_DAYS = 3650
SAMPLE = 10
# Keys a custom rule may not take: the built-ins, and words the lists' own addresses use.
RESERVED = set(BUILTIN_KEYS) | {"export", "new", "all", "issues", "none"}


class RuleError(ValueError):
    """A definition that cannot be saved: `errors` maps a field ("name", "scope", "clauses.2") to a message."""

    def __init__(self, errors):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def clean_scope(query):
    """(normalised query string, the scope in words); RuleError naming what the issue lists would refuse."""
    query = (query or "").strip().lstrip("?")
    if len(query) > 2000:
        raise RuleError({"scope": "That scope is too long."})
    data = QueryDict(query)
    unknown = sorted(name for name in data if name not in ResourceFilterSet.base_filters)
    if unknown:
        raise RuleError({"scope": f"“{unknown[0][:40]}” is not one of the issue lists' filters."})
    history = [name for name in HISTORY_FILTERS if data.get(name)]
    if history:
        label = ResourceFilterSet.base_filters[history[0]].label
        raise RuleError({"scope": f"A rule's scope cannot use “{label}”: it depends on the issues rules open, "
                                  f"so the rule would change what it flags every time it counted."})
    filterset = filterset_from_query(query)
    if not filterset.is_valid():
        name, errors = next(iter(filterset.errors.items()))
        label = filterset.form.fields[name].label if name in filterset.form.fields else name
        raise RuleError({"scope": f"{label}: {' '.join(errors)}"})
    return applied_query(filterset), filterset.describe()


def clean_sla_days(value):
    """A rule's "fix within N days": None when blank (no time limit), else a whole number from 1 to
    MAX_SLA_DAYS. ValueError saying so otherwise."""
    if value is None or str(value).strip() == "":
        return None
    try:
        days = int(str(value).strip())
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_SLA_DAYS:
        raise ValueError(f"“Fix within” is a whole number of days from 1 to {MAX_SLA_DAYS}, or blank for no limit.")
    return days


def clean_definition(data, builtin=False):
    """The fields of a rule, checked. `data`: name, explanation, weight, enabled, scope, match, clauses and
    optionally sla_days. A built-in rule takes only its weight, on/off and sla_days. Raises RuleError."""
    errors, cleaned = {}, {}
    weight = data.get("weight", 10)
    try:
        weight = int(str(weight).strip())
        if not 0 <= weight <= MAX_WEIGHT:
            raise ValueError
        cleaned["weight"] = weight
    except (TypeError, ValueError):
        errors["weight"] = f"The weight is a whole number from 0 to {MAX_WEIGHT} (points off the health score)."
    enabled = data.get("enabled", True)
    cleaned["enabled"] = enabled if isinstance(enabled, bool) else str(enabled).lower() in ("1", "true", "on", "yes")
    if "sla_days" in data:  # absent: left as it is (a form without the field does not clear it)
        try:
            cleaned["sla_days"] = clean_sla_days(data["sla_days"])
        except ValueError as exc:
            errors["sla_days"] = str(exc)
    if builtin:
        if errors:
            raise RuleError(errors)
        return cleaned
    name = re.sub(r"\s+", " ", str(data.get("name") or "")).strip()
    if not name:
        errors["name"] = "Give the rule a name stewards will recognise, e.g. “PII columns not verified”."
    elif len(name) > 80:
        errors["name"] = "Names are at most 80 characters."
    cleaned["name"] = name
    explanation = re.sub(r"\s+", " ", str(data.get("explanation") or "")).strip()
    if len(explanation) > 300:
        errors["explanation"] = "Explanations are at most 300 characters."
    cleaned["explanation"] = explanation
    match = data.get("match") or Rule.ALL
    if match not in (Rule.ALL, Rule.ANY):
        errors["match"] = "Choose whether all or any of the clauses must hold."
    cleaned["match"] = match
    try:
        cleaned["scope"], cleaned["scope_label"] = clean_scope(data.get("scope", ""))
    except RuleError as exc:
        errors.update(exc.errors)
    raw = data.get("clauses") or []
    if not isinstance(raw, list):
        errors["clauses"] = "The condition is a list of clauses."
        raw = []
    clauses, clause_errors = conditions.check_all(raw)
    for index, message in clause_errors.items():
        errors[f"clauses.{index}"] = message
    if not raw and "clauses" not in errors:
        errors["clauses"] = "Add at least one clause: a rule with no condition would flag nothing."
    cleaned["clauses"] = clauses
    if errors:
        raise RuleError(errors)
    if not cleaned["explanation"]:
        joiner = " and " if match == Rule.ALL else " or "
        cleaned["explanation"] = joiner.join(conditions.describe(c) for c in clauses)[:300]
    return cleaned


def new_key(name):
    """A key for a new custom rule: from its name, never one any rule (even a deleted one) had."""
    slug = slugify(name).replace("-", "_")
    base = slug[:28]
    if len(slug) > 28 and "_" in base:  # a long name is cut at a word, not in one
        base = base.rsplit("_", 1)[0]
    base = base.strip("_") or "rule"
    if base in RESERVED:
        base = f"{base}_rule"
    taken = set(Rule.objects.filter(key__startswith=base).values_list("key", flat=True))
    key, n = base, 2
    while key in taken or key in RESERVED:
        key, n = f"{base}_{n}", n + 1
    return key


def definition_q(cleaned, prefix=""):
    q = conditions.condition_q(cleaned["clauses"], cleaned["match"], prefix)
    if cleaned.get("scope"):
        q &= registry.scope_q(cleaned["scope"], prefix)
    return q


def preview(cleaned, sample=SAMPLE):
    """What a checked definition would flag now (snoozes aside): the count of the resources in its scope and of
    those it flags, by integration and by team, and a sample, the first by path. One pass over the scope counts
    everything (grouped by integration and team list, a few hundred rows); the sample is looked for only when
    something matches, in the lists' own order (so the planner can walk their index and stop early)."""
    condition = conditions.condition_q(cleaned["clauses"], cleaned["match"])
    scoped = in_scope()
    if cleaned.get("scope"):
        scoped = scoped.filter(registry.scope_q(cleaned["scope"], own_lists=False))
    total = in_scope_count = 0
    integrations, teams = Counter(), Counter()
    for row in (scoped.order_by().values("integration_id", "teams")
                .annotate(n=Count("pk", filter=condition), everything=Count("pk"))):
        in_scope_count += row["everything"]
        total += row["n"]
        if row["n"]:
            integrations[row["integration_id"]] += row["n"]
            for team in set(row["teams"] or ()):
                teams[team] += row["n"]
    names = dict(Integration.objects.filter(pk__in=[pk for pk in integrations if pk]).values_list("id", "name"))
    by_integration = [{"integration_id": pk, "integration__name": names.get(pk), "n": n}
                      for pk, n in sorted(integrations.items(), key=lambda item: (-item[1], names.get(item[0]) or ""))]
    by_team = [{"ref_id": pk, "n": n} for pk, n in sorted(teams.items(), key=lambda item: (-item[1], item[0]))]
    rows = list(scoped.filter(condition).select_related("integration").only(
        "id", "title_full", "title", "entity_type", "integration__name").order_by(Lower("title_full"), "id")[:sample]
    ) if total else []
    return {"total": total, "by_integration": by_integration[:12], "by_team": by_team[:12], "sample": rows,
            "in_scope": in_scope_count}


@transaction.atomic
def save(cleaned, user=None, rule=None, key=None, snapshot=True):
    """Create (rule None; under `key` when given, else one from its name) or update a rule from a checked
    definition, then take a snapshot on commit (`snapshot=False`: the caller takes one after many saves)."""
    now = timezone.now()
    if rule is None:
        position = (Rule.objects.order_by("-position").values_list("position", flat=True).first() or 100) + 1
        rule = Rule(key=key or new_key(cleaned["name"]), created_by=user, created_at=now,
                    position=max(position, 100))
    for field in ("name", "explanation", "weight", "enabled", "scope", "match", "clauses", "sla_days"):
        if field in cleaned:
            setattr(rule, field, cleaned[field])
    rule.updated_at = now
    rule.save()
    registry.forget()
    if snapshot:
        transaction.on_commit(lambda: take_snapshot(Snapshot.RULES))
    return rule


@transaction.atomic
def delete(rule):
    """A custom rule is marked deleted (its key and name stay for history); a built-in can only be switched off."""
    if rule.builtin:
        raise RuleError({"rule": "Built-in rules cannot be deleted; switch them off instead."})
    rule.deleted_at = rule.updated_at = timezone.now()
    rule.enabled = False
    rule.save(update_fields=["deleted_at", "enabled", "updated_at"])
    registry.forget()
    transaction.on_commit(lambda: take_snapshot(Snapshot.RULES))


def ensure_builtin_rows():
    """The built-in rules' rows (a flushed test database may lack them): created with their defaults."""
    missing = [rule for rule in registry.everything() if rule.builtin and rule.pk is None]
    for rule in missing:
        Rule.objects.get_or_create(key=rule.key, defaults={
            "name": rule.label, "builtin": True, "weight": rule.weight,
            "position": BUILTIN_KEYS.index(rule.key)})
    if missing:  # read again only when rows were made (pages call this on every request)
        registry.forget()

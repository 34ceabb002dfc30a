"""What a report says: counts per rule for its scope, the change since the last report, the health
score, the issues opened and fixed since the last report, and the scope's worst assets (for "assets I own",
that person's)."""
from datetime import timedelta

from django.conf import settings
from django.db.models import Avg, Count, Q
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from catalog_sync.models import ResourceRef, SecodaUser
from catalog_sync.normalize import http_url
from catalog_sync.sync import still_missing
from hygiene.accounts.services import linked_person, owned_by
from hygiene.domain.directory import Directory
from hygiene.dashboard.filtersets import filterset_from_query, ref_q
from hygiene.domain.issues import active_snoozes, any_of, open_issue_filters
from hygiene.domain.lists import issue_queryset
from hygiene.lifecycle.pages import overdue_count
from hygiene.lifecycle.models import IssueInterval
from hygiene.reports.models import Subscription
from hygiene.reports.schedule import zone
from hygiene.rulebook import registry
from hygiene.rulebook.registry import health_expression
from hygiene.rules import in_scope

WORST_ASSETS = 25
CHANGES_SHOWN = 25  # new and fixed issues listed by name; the rest are counted ("and N more")
FIRST_REPORT_DAYS = 7  # a first report's new and fixed issues: this many days back


def saved_view_filter(view, snoozes=None):
    """(Q on Resource, problems) for exactly a saved view's rows: its filter through the list's own
    filterset, and its rule's open issues. A part of the filter that no longer validates (a team gone
    from Secoda) is left out, as the list leaves it out, and named in `problems`."""
    if view is None:  # deleted: its reports are stopped; a preview counts nothing
        return Q(pk__in=[]), ["This report's saved view was deleted."]
    filterset = filterset_from_query(view.filter_query)
    problems = []
    if not filterset.is_valid():
        for name, errors in filterset.errors.items():
            label = filterset.form.fields[name].label if name in filterset.form.fields else name
            problems.append(f"The filter “{label}” no longer applies and is left out: {' '.join(errors)}")
    q = Q(pk__in=filterset.qs.order_by().values("pk"))
    if view.rule:
        rule_q = open_issue_filters(snoozes=snoozes).get(view.rule)
        if rule_q is None:
            gone = registry.known(view.rule)
            name = gone.label if gone else view.rule
            problems.append(f"The rule “{name}” is no longer in force, so nothing is counted.")
            rule_q = Q(pk__in=[])
        q &= rule_q
    return q, problems


def scope_filter(subscription, snoozes=None):
    """(Q on Resource, link query string, plain words) for a subscription's scope."""
    if subscription.scope == Subscription.VIEW:
        view = subscription.saved_view
        return saved_view_filter(view, snoozes)[0], view.filter_query if view else "", "view"
    if subscription.scope == Subscription.TEAM:
        return ref_q(ResourceRef.TEAM, subscription.scope_id), f"team={subscription.scope_id}", "team"
    if subscription.scope == Subscription.INTEGRATION:
        return Q(integration_id=subscription.scope_id), f"integration={subscription.scope_id}", "integration"
    if subscription.scope == Subscription.MINE:
        # The subscriber's Secoda person (linked by hand or by e-mail), else the one with the report's address:
        # the assets they own by name, exactly what the linked list (owner filter) shows.
        person = linked_person(subscription.user).person or SecodaUser.objects.present().filter(
            email__iexact=subscription.email).first()
        if person is None:
            return Q(pk__in=[]), "", "owner"
        return owned_by(person), urlencode({"owner": f"user:{person.pk}"}), "owner"
    return Q(), "", "workspace"


def scope_label(subscription, directory=None):
    directory = directory or Directory()
    if subscription.scope == Subscription.TEAM:
        return f"team {directory.teams.get(subscription.scope_id, 'unknown')}"
    if subscription.scope == Subscription.INTEGRATION:
        return f"integration {directory.integrations.get(subscription.scope_id, 'unknown')}"
    if subscription.scope == Subscription.MINE:
        return "assets you own"
    if subscription.scope == Subscription.VIEW:
        view = subscription.saved_view
        return f"saved view “{view.name}”" if view else "a saved view that was deleted"
    return "the whole workspace"


def site_link(path, query=""):
    return f"{settings.SITE_URL}{path}{'?' + query if query else ''}"


def history_scope(subscription, view, scope_q):
    """(Q on Resource, rule keys) whose new and fixed issues a report lists. For a saved view: its filter
    without its rule's condition (a fixed issue no longer breaks the rule), and that rule alone."""
    keys = registry.keys()
    if subscription.scope != Subscription.VIEW:
        return scope_q, keys
    if view is None or (view.rule and view.rule not in keys):
        return Q(pk__in=[]), ()
    filterset = filterset_from_query(view.filter_query, rule=view.rule or None)  # invalid parts left out
    return Q(pk__in=filterset.qs.order_by().values("pk")), ([view.rule] if view.rule else keys)


def new_issues_link(view, query, since):
    """The list of the report's scope filtered to issues new since `since` (its day, as the list counts days)."""
    rule = view.rule if view is not None and view.rule in registry.keys() else ""
    params = QueryDict(query, mutable=True)
    params["new_since"] = timezone.localtime(since).date().isoformat()
    return site_link(reverse("dashboard:rule", args=[rule]) if rule else reverse("dashboard:issues"),
                     params.urlencode())


def issue_changes(subscription, resources_q, rules, now=None):
    """Issues (a resource and a rule) opened and still open, and closed as fixed, since the last report (a
    first report: the last FIRST_REPORT_DAYS days): {"since", "first", "new": {...}, "fixed": {...}}, each with
    up to CHANGES_SHOWN items newest first, its total and how many more there are. Three queries at most."""
    now = now or timezone.now()
    since = subscription.last_sent_at or now - timedelta(days=FIRST_REPORT_DAYS)
    intervals = IssueInterval.objects.filter(rule__in=list(rules),
                                             resource_id__in=in_scope().filter(resources_q).order_by().values("pk"))
    # Open intervals begun when the history began are not new: their start is unknown.
    new = intervals.filter(closed_at__isnull=True, seen_since=False, opened_at__gte=since)
    fixed = intervals.filter(close_reason=IssueInterval.FIXED, closed_at__gte=since)
    totals = intervals.aggregate(new=Count("pk", filter=Q(closed_at__isnull=True, seen_since=False,
                                                          opened_at__gte=since)),
                                 fixed=Count("pk", filter=Q(close_reason=IssueInterval.FIXED, closed_at__gte=since)))
    labels, tz = registry.labels(), zone(subscription.time_zone)

    def listed(query, total, when, order):
        if not total:
            return []
        rows = (query.select_related("resource").order_by(order, "id")
                .only("rule", when, "resource", "resource__title", "resource__title_full")[:CHANGES_SHOWN])
        return [{"title": row.resource.title_full or row.resource.title or row.resource_id,
                 "rule": labels.get(row.rule, row.rule), "day": getattr(row, when).astimezone(tz).date(),
                 "link": site_link(reverse("dashboard:resource", args=[row.resource_id]))} for row in rows]

    def section(query, total, when):
        items = listed(query, total, when, f"-{when}")
        return {"items": items, "total": total, "more": total - len(items)}

    return {"since": since, "first": subscription.last_sent_at is None, "days": FIRST_REPORT_DAYS,
            "new": section(new, totals["new"], "opened_at"), "fixed": section(fixed, totals["fixed"], "closed_at")}


def missing_from_mirror(subscription):
    """What the last sync could not list (when it ended incomplete), as far as this report's scope goes."""
    pieces = still_missing()
    if subscription.scope == Subscription.INTEGRATION:
        pieces = [p for p in pieces if p.get("integration_id") in (subscription.scope_id, "", None)]
    return [{**p, "integration": p.get("integration") or p.get("label", "")} for p in pieces]


def overdue_line(resources, view, query):
    """How many of the scope's open issues are past their rule's fix-within time, and the list of them; None
    when no rule in force has a fix-within time."""
    rules = [view.rule] if view is not None and view.rule else None
    count = overdue_count(resources.order_by().values("pk"), rules)
    if count is None:
        return None
    path = reverse("dashboard:rule", args=[view.rule]) if rules else reverse("dashboard:issues")
    return {"count": count, "link": site_link(path, "&".join(filter(None, [query, "overdue=true"])))}


def build_report(subscription):
    snoozes = active_snoozes()
    filters = open_issue_filters(snoozes=snoozes)
    view = subscription.saved_view if subscription.scope == Subscription.VIEW else None
    view_problems = []
    if subscription.scope == Subscription.VIEW:
        scope_q, view_problems = saved_view_filter(view, snoozes)
        query = view.filter_query if view else ""
    else:
        scope_q, query, _ = scope_filter(subscription, snoozes)
    resources = in_scope().filter(scope_q)
    measures = resources.aggregate(
        m_resources=Count("pk"), m_issues=Count("pk", filter=any_of(filters)),
        m_health=Avg(health_expression(filters)),
        **{f"m_{rule}": Count("pk", filter=q) for rule, q in filters.items()},
    )
    counts = {name[2:]: value for name, value in measures.items()}
    # Whole numbers, as the dashboard shows health everywhere.
    counts["health"] = round(counts["health"]) if counts["health"] is not None else None
    previous = subscription.last_counts or {}
    rules = []
    for rule in registry.rules():
        now, before = counts[rule.key], previous.get(rule.key)
        rules.append({
            "key": rule.key, "label": rule.label, "count": now, "custom": not rule.builtin,
            "change": None if before is None else now - before,
            "link": site_link(reverse("dashboard:rule", args=[rule.key]), query),
        })
    worst = []
    if counts["issues"]:  # every scope: the assets with the lowest health first
        directory = Directory()
        flagged = issue_queryset(None, snoozes=snoozes).filter(scope_q).order_by("health", "title_full", "id")
        for resource in flagged[:WORST_ASSETS]:
            worst.append({
                "title": resource.title_full or resource.title, "health": None if resource.health is None else round(resource.health),
                "integration": resource.integration.name if resource.integration else "",
                "broken": [rule.label for rule in registry.rules() if getattr(resource, f"breaks_{rule.key}")],
                "link": site_link(reverse("dashboard:resource", args=[resource.pk])), "secoda": http_url(resource.url),
                "owners": directory.owner_names(resource),
            })
    changes = issue_changes(subscription, *history_scope(subscription, view, scope_q))
    if changes["new"]["total"]:
        changes["new"]["link"] = new_issues_link(view, query, changes["since"])
    health_before = previous.get("health")
    missing = missing_from_mirror(subscription)
    return {
        "missing": missing, "partial": bool(missing),
        "scope": scope_label(subscription), "counts": counts, "rules": rules, "worst": worst,
        "worst_total": counts["issues"], "own": subscription.scope == Subscription.MINE,
        "view_problems": view_problems, "changes": changes,
        "health": counts["health"],
        "health_change": None if health_before is None or counts["health"] is None
        else round(counts["health"] - health_before),
        "dashboard_link": site_link(view.link) if view else site_link(reverse("dashboard:issues"), query),
        "settings_link": site_link(reverse("reports:list")),
        "overdue": overdue_line(resources, view, query),  # past their rule's fix-within time
    }

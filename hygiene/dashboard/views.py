import csv
import io
import itertools

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponsePermanentRedirect, HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST
from django_tables2 import RequestConfig
from django_tables2.rows import BoundRows

from catalog_sync.models import DbtTestStatus, Resource, ResourceRef
from catalog_sync.status import mirror_status
from hygiene.dashboard import saved_views
from hygiene.dashboard.charts import trend_chart
from hygiene.domain.directory import Directory
from hygiene.dashboard.filtersets import ResourceFilterSet, applied_query, filterset_from_query
from hygiene.dashboard.forms import SavedViewForm, SnoozeForm
from hygiene.dashboard.history import resource_history
from hygiene.domain.issues import active_snoozes, flags, open_issue_filters, snoozed_issue_filters
from hygiene.dashboard.models import Snapshot, Snooze
from hygiene.domain.snapshots import latest_snapshot, take_snapshot
from hygiene.dashboard.tables import ResourceTable
from hygiene.domain import lists
from hygiene.roles import is_steward, steward_required
from hygiene.lifecycle import scopes
from hygiene.lifecycle.ages import with_open_since
from hygiene.lifecycle.pages import issue_flow, resource_timeline
from hygiene.lifecycle.queries import plain_duration
from hygiene.rulebook import registry
from hygiene.rulebook.registry import health_expression
from hygiene.suggestions.models import Suggestion

PER_PAGE_CHOICES = (25, 50, 100, 200)
TREND_POINTS = 60


# -- shared pieces -------------------------------------------------------------------

def percent(part, whole):
    return 100 * part / whole if whole else 0


def breakdown_rows(groups, label_of, link_param):
    """Rows for a breakdown table, worst first (most open issues)."""
    rows = []
    for key, measures in groups.items():
        rows.append({"key": key, "label": label_of(key), "link_param": link_param, **measures,
                     "issue_share": percent(measures.get("issues", 0), measures.get("resources", 0))})
    return sorted(rows, key=lambda r: (-r.get("issues", 0), r["label"].lower()))


def team_label(directory):
    return lambda key: "No team" if key == "none" else directory.teams.get(key, f"Unknown team {key[:8]}")




def gone_rule(key):
    """Why a rule's list is not there: never existed, switched off, or deleted (its history stays)."""
    rule = registry.known(key)
    if rule is None:
        return "There is no such rule."
    return f"The rule “{rule.label}” was {'deleted' if rule.deleted else 'switched off'}; its past counts stay " \
           f"in the trends."


# -- overview ------------------------------------------------------------------------

def home(request):
    snapshot = latest_snapshot()
    directory = Directory()
    totals = snapshot.totals
    total = totals.get("resources", 0)
    rules = [
        {"key": rule.key, "label": rule.label, "count": totals.get(rule.key, 0), "css": rule.css,
         "builtin": rule.builtin, "counted": rule.key in totals,
         "coverage": 100 - percent(totals.get(rule.key, 0), total), "explanation": rule.explanation,
         # How many of its open issues have a suggested fix (unowned, undocumented; from the same snapshot).
         "suggested": totals.get(f"suggested_{rule.key}"), "suggestion": Suggestion.KIND_OF_RULE.get(rule.key)}
        for rule in registry.rules()
    ]
    history = list(Snapshot.objects.filter(reason=Snapshot.SYNC).only("taken_at", "totals")[:TREND_POINTS])[::-1]
    points = [(s.taken_at, s.totals) for s in history]
    trend = trend_chart(points, registry.history_keys(points), registry.history_labels())
    return render(request, "dashboard/home.html", {
        "snapshot": snapshot, "totals": totals, "rules": rules, "trend": trend,
        "integration_count": len(snapshot.by_integration),
        **integration_breakdown(request, snapshot, directory),
        "by_entity_type": breakdown_rows(snapshot.by_entity_type, lambda k: k.replace("_", " ").capitalize(),
                                         "entity_type"),
        "by_team": breakdown_rows(snapshot.by_team, team_label(directory),
                                  "team"),
        "rule_keys": registry.keys(), "rule_labels": registry.labels(), **mirror_status(),
        **issue_flow(),
    })


# -- issue lists ---------------------------------------------------------------------

def parse_positive(value):
    """A whole number of at least 1, or None."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 1 else None


def checked_filterset(request, filterset_class, queryset, **kwargs):
    """A filterset of the request's query string whose invalid values are dropped, each with a message saying
    why: the other filters still apply, and a bad value never makes a 500."""
    filterset = filterset_class(request.GET, queryset=queryset, **kwargs)
    if filterset.is_bound and not filterset.is_valid():
        data = request.GET.copy()
        for name, errors in filterset.errors.items():
            label = filterset.form.fields[name].label if name in filterset.form.fields else name
            messages.error(request, f"Ignored the filter “{label}”: {' '.join(errors)}")
            data.pop(name, None)
        filterset = filterset_class(data, queryset=queryset, **kwargs)
    return filterset


def without_blank_filters(request):
    """A redirect to the same list without the empty fields a filter form sends (the address stays short and
    shareable), or None when there are none."""
    if not any("" in values for _, values in request.GET.lists()):
        return None
    kept = QueryDict(mutable=True)
    for name, values in request.GET.lists():
        if [v for v in values if v]:
            kept.setlist(name, [v for v in values if v])
    return HttpResponseRedirect(f"{request.path}?{kept.urlencode()}" if kept else request.path)


def paginate(request, table, known_count=None):
    """Sort the table from ?sort= and show the page ?page= of ?per_page= rows; a bad number is answered with a
    message and the nearest good page, never a 404. Returns the rows a page."""
    per_page = parse_positive(request.GET.get("per_page"))
    if "per_page" in request.GET and per_page not in PER_PAGE_CHOICES:
        messages.warning(request, f"Showing 50 rows a page; choose one of {', '.join(map(str, PER_PAGE_CHOICES))}.")
        per_page = 50
    page = parse_positive(request.GET.get("page"))
    if "page" in request.GET and page is None:
        messages.warning(request, f"“{request.GET['page']}” is not a page number; showing the first page.")
    counted = table.data.data  # counted before a sort joins anything in
    RequestConfig(request, paginate=False).configure(table)  # sorting from ?sort=
    table.paginator = IssuePaginator(table.rows, per_page or 50, known_count=known_count, counted=counted)
    if page and page > table.paginator.num_pages:
        messages.warning(request, f"There is no page {page}; showing the last page.")
        page = table.paginator.num_pages
    table.page = table.paginator.page(page or 1)
    return per_page or 50


def filtered_issues(request, rule):
    """The list's filterset and queryset. Invalid filter values are dropped with a message, never a 500."""
    snapshot = latest_snapshot()  # also brings stored health scores up to date when a snooze ran out
    snoozed = request.GET.get("snoozed", lists.SNOOZED_HIDE)
    if snoozed not in (lists.SNOOZED_HIDE, lists.SNOOZED_ONLY):
        messages.warning(request, f"“{snoozed}” is not a snooze view; showing open issues.")
        snoozed = lists.SNOOZED_HIDE
    filterset = checked_filterset(request, ResourceFilterSet, lists.issue_queryset(rule, snoozed=snoozed), rule=rule)
    # An unfiltered list of open issues has the snapshot's count: no COUNT over the whole mirror.
    known_count = None
    query = applied_query(filterset)
    if snoozed == lists.SNOOZED_HIDE and not query:
        known_count = snapshot.totals.get(rule or "issues")
    return filterset, snoozed, known_count, query


def issue_list(request, rule=None):
    if rule is not None and registry.get(rule) is None:
        raise Http404(gone_rule(rule))
    shorter = without_blank_filters(request)
    if shorter:
        return shorter
    filterset, snoozed, known_count, filter_query = filtered_issues(request, rule)
    directory = Directory()
    steward = is_steward(request.user)
    columns = ResourceTable.visible_columns(request, steward, rule)
    table = ResourceTable(filterset.qs, directory=directory, rule=rule,
                          exclude=[c for c in ResourceTable.base_columns if c not in columns])
    per_page = paginate(request, table, known_count)
    hidden_by_snooze = 0
    if not table.paginator.count and snoozed == lists.SNOOZED_HIDE:
        # An empty list may be empty only because its issues are snoozed: say so, rather than "nothing here".
        snoozed_base = lists.issue_queryset(rule, snoozed=lists.SNOOZED_ONLY)
        hidden_by_snooze = ResourceFilterSet(filterset.data, queryset=snoozed_base, rule=rule).qs.count()
    query = request.GET.copy()
    for name in ("page", "sort", "columns"):
        query.pop(name, None)
    export_query = query.copy()
    if request.GET.get("sort"):
        export_query["sort"] = request.GET["sort"]  # the CSV comes in the list's order
    export_query = export_query.urlencode()
    open_query = query.copy()
    open_query.pop("snoozed", None)
    return render(request, "dashboard/issue_list.html", {
        "rule": rule, "rule_label": registry.get(rule).label if rule else "All issues",
        "rule_def": registry.get(rule) if rule else None,
        # The unowned and undocumented lists link to their suggested fixes, with the same filters.
        "suggestion_noun": Suggestion.KIND_OF_RULE.get(rule),
        "explanation": registry.get(rule).explanation if rule else "Every resource that breaks at least one rule.",
        "filterset": filterset, "table": table, "snoozed": snoozed, "hidden_by_snooze": hidden_by_snooze,
        "filter_summary": filterset.describe(), "export_query": export_query, "open_query": open_query.urlencode(),
        # Filters that applied: a list whose every filter was refused offers nothing to snooze.
        "filters_active": bool(filter_query),
        "columns": columns, "all_columns": [(name, ResourceTable.base_columns[name].verbose_name)
                                           for name in ResourceTable.choosable_columns()],
        "filter_query": filter_query,
        "kept_params": kept_params(filter_query, snoozed),
        "per_page_choices": PER_PAGE_CHOICES, "per_page": per_page,
        "rules": [(r.key, r.label) for r in registry.rules()],
        "can_edit": steward,
        "snooze_form": SnoozeForm(initial={"rule": rule or "", "filter_query": filter_query,
                                           "next": request.get_full_path()}),
        "saved_view": saved_views.matching_view(request.user, rule, filterset) if snoozed != lists.SNOOZED_ONLY
        else None,
        "save_view_form": SavedViewForm(steward=steward, initial={
            "rule": rule or "", "filter_query": filter_query, "next": request.get_full_path()}),
    })


class IssuePaginator(Paginator):
    """Pages of a table's rows (issue lists, suggestions). Takes the row count when it is already known (from the snapshot), and reads a
    page in two steps: the ids of the page in the list's order (a narrow query, so the rows skipped before the
    page and the rows sorted past are never worked out in full), then those rows with what the table shows."""

    def __init__(self, object_list, per_page, known_count=None, counted=None, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        if known_count is not None:
            self.count = known_count
        elif counted is not None:  # counted before a sort joined anything in
            self.count = counted.count()

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return self._get_page(self.rows_between(bottom, top), number, self)

    def rows_between(self, bottom, top):
        rows = self.object_list
        queryset = rows.data.data
        if hasattr(rows.table, "page_ids"):  # a table that reads its order its own way
            ids = rows.table.page_ids(queryset, bottom, top)
        else:
            ids = list(queryset.values_list("pk", flat=True)[bottom:top])
        page = queryset.filter(pk__in=ids).order_by()
        if hasattr(rows.table, "page_queryset"):  # what the table shows of a row but needs not sort or count
            page = rows.table.page_queryset(page)
        records = {record.pk: record for record in page} if ids else {}
        return BoundRows([records[pk] for pk in ids if pk in records], rows.table)


def kept_params(filter_query, snoozed):
    """(name, value) pairs the Columns and Rows forms carry along: valid filters and the view."""
    pairs = [(name, value) for name, values in QueryDict(filter_query).lists() for value in values]
    if snoozed == lists.SNOOZED_ONLY:
        pairs.append(("snoozed", snoozed))
    return pairs


def csv_chunks(rows, size=500):
    """CSV text `size` rows at a time (one chunk a row costs the server a write per row), written by the csv
    module's own loop over each batch."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    rows = iter(rows)
    while batch := list(itertools.islice(rows, size)):
        writer.writerows(batch)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def issue_export(request, rule=None):
    if rule is not None and registry.get(rule) is None:
        raise Http404(gone_rule(rule))
    filterset = filtered_issues(request, rule)[0]
    queryset = with_open_since(filterset.qs, rule).order_by("title_full", "id")
    if request.GET.get("sort"):  # the order the steward chose on the list, ties broken by id
        table = ResourceTable(queryset, directory=Directory(), rule=rule)
        RequestConfig(request, paginate=False).configure(table)
        ordering = list(table.data.data.query.order_by)
        queryset = queryset.order_by(*ordering, *([] if "id" in ordering else ["id"]))
    rows = lists.csv_rows(queryset, Directory(), rule)
    response = StreamingHttpResponse(csv_chunks(rows), content_type="text/csv")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="catalog-{rule or "all-issues"}-{stamp}.csv"'
    return response


# -- one resource --------------------------------------------------------------------

def resource_detail(request, pk):
    snoozes = active_snoozes()
    open_filters = open_issue_filters(snoozes=snoozes)
    # Which rules a filter-wide snooze covers here, in the same query (not one query per rule).
    by_filter = snoozed_issue_filters(snoozes=[s for s in snoozes if s.filter_query])
    resource = get_object_or_404(
        Resource.objects.select_related("integration", "parent").annotate(
            health=health_expression(open_filters), **flags("breaks_", open_filters), **flags("covered_", by_filter),
            # Without any snooze: a resource whose issues are all snoozed is not healthy, only quiet.
            health_unsnoozed=health_expression(open_issue_filters(snoozes=()))),
        pk=pk,
    )
    directory = Directory()
    children = resource.children.filter(removed_at__isnull=True).order_by("title", "id")
    dbt = list(DbtTestStatus.objects.filter(resource_id=resource.pk).select_related("integration"))
    timeline = resource_timeline(resource.pk)
    # "Failing since": the start of its open issue when the history has one, else when the mirror first saw it.
    since = {row["interval"].rule: row["interval"] for row in timeline if row["interval"].closed_at is None}
    for status in dbt:
        started = since.get(f"{status.status}_dbt_tests")
        status.since = started.opened_at if started else status.first_seen_at
        status.since_known = started is not None and not started.seen_since
    own_snoozes = Snooze.objects.filter(resource=resource).select_related("created_by").order_by("-created_at")
    labels = registry.labels()
    filter_snoozed_rules = [labels[rule] for rule in by_filter if getattr(resource, f"covered_{rule}")]
    broken = [(rule.key, rule.label, rule.explanation, rule.css) for rule in registry.rules()
              if getattr(resource, f"breaks_{rule.key}")]
    return render(request, "dashboard/resource.html", {
        "resource": resource, "broken": broken,
        "owners": directory.owner_names(resource), "teams": directory.team_names(resource.teams),
        "tags": directory.tag_names(resource.tags), "children": list(children[:50]),
        "children_count": children.count(), "dbt": dbt, "snoozes": own_snoozes,
        "filter_snoozed_rules": filter_snoozed_rules, "can_edit": is_steward(request.user),
        "snooze_form": SnoozeForm(initial={"resource": resource.pk, "next": request.get_full_path()}),
        "rules": [(r.key, r.label) for r in registry.rules()], "rule_labels": labels,
        "history": resource_history(resource, directory), "timeline": timeline,
    })


# -- people and teams ----------------------------------------------------------------

SCOPE_PAGES = {  # scope -> (snapshot field, url name, what it is called)
    scopes.TEAM: ("by_team", "dashboard:team", "Team"),
    scopes.OWNER: ("by_owner", "dashboard:owner", "Owner"),
    scopes.INTEGRATION: ("by_integration", "dashboard:integration", "Integration"),
}
SCOPE_KEY_MAX = 80  # "group:" and a Secoda id
BREAKDOWN_SORTS = ("issues", "median_fix")


def trend(request):
    """The old address of a team's or an integration's page (`/trend/?team=<id>`), kept for bookmarks."""
    scope = next((name for name in SCOPE_PAGES if request.GET.get(name)), None)
    if scope is None:
        raise Http404("Choose a team, an owner or an integration.")
    key = request.GET[scope][:SCOPE_KEY_MAX]
    return HttpResponsePermanentRedirect(reverse(SCOPE_PAGES[scope][1], args=[key]))


def in_directory(scope, key, directory):
    if scope == scopes.OWNER:
        kind, ref_id = scopes.owner_ref(key)
        return ref_id in (directory.users if kind == ResourceRef.OWNER else directory.groups)
    return key in (directory.teams if scope == scopes.TEAM else directory.integrations)


def scope_label(scope, key, directory):
    if scope == scopes.TEAM:
        return team_label(directory)(key)
    if scope == scopes.OWNER:
        return directory.owner_label(key)
    return directory.integrations.get(key, f"Unknown integration {key[:8]}")


def scope_page(request, scope, key):
    """One team's, owner's or integration's page: open issues per rule after each sync (the burn-down), today's
    counts, what was opened and fixed and how fast, how many are past their rule's fix-within time, and the
    issues open longest, each linking to its resource and the lists filtered to it."""
    field, url_name, noun = SCOPE_PAGES[scope]
    if len(key) > SCOPE_KEY_MAX or (scope == scopes.OWNER and scopes.owner_ref(key) is None):
        raise Http404(f"No such {noun.lower()}." + (" Owners are user:<id> or group:<id>." if scope == scopes.OWNER
                                                   else ""))
    directory = Directory()
    snapshot = latest_snapshot()
    history = list(Snapshot.objects.filter(reason=Snapshot.SYNC).only("taken_at", field)[:TREND_POINTS])[::-1]
    # Any the directory knows, or one the snapshots counted (since gone from Secoda).
    if not in_directory(scope, key, directory) and key not in getattr(snapshot, field) and not any(
            key in getattr(s, field) for s in history):
        raise Http404(f"No such {noun.lower()}.")
    points = [(s.taken_at, getattr(s, field).get(key, {})) for s in history]
    now = getattr(snapshot, field).get(key, {})
    first = points[0][1] if points else {}
    label = scope_label(scope, key, directory)
    list_query = urlencode({scope: key})
    return render(request, "dashboard/scope.html", {
        "scope": scope, "noun": noun, "label": label, "key": key, "list_query": list_query,
        "snapshot": snapshot, "now": now, "since": points[0][0] if points else None,
        "chart": trend_chart(points, registry.history_keys(points), registry.history_labels()),
        "rules": [{"key": rule.key, "label": rule.label, "count": now.get(rule.key, 0),
                   "first": first.get(rule.key, 0), "change": now.get(rule.key, 0) - first.get(rule.key, 0)}
                  for rule in registry.rules()],
        **issue_flow(scopes.intervals_in(scope, key)), "scope_label": label,
    })


def team_page(request, key):
    return scope_page(request, scopes.TEAM, key)


def owner_page(request, key):
    return scope_page(request, scopes.OWNER, key)


def integration_page(request, key):
    return scope_page(request, scopes.INTEGRATION, key)


def sorted_breakdown(request, rows, scope, sort_param="sort"):
    """Breakdown rows with each one's median time to fix (one grouped query for all), worst first: by open
    issues (the default) or, with `?<sort_param>=median_fix`, by the median time to fix, slowest first (rows
    without a fix in 90 days last). An unknown sort is named in a message and the default kept."""
    medians = scopes.median_fix_by(scope)
    for row in rows:
        seconds = medians.get(row["key"])
        row["median_fix_seconds"], row["median_fix"] = seconds, plain_duration(seconds)
    sort = request.GET.get(sort_param) or "issues"
    if sort not in BREAKDOWN_SORTS:
        shown = "".join(ch for ch in sort[:40] if ch.isprintable())
        messages.warning(request, f"“{shown}” is not a way to sort this table: showing the most open issues "
                                  f"first. Choose “Median time to fix” to see the slowest first.")
        sort = "issues"
    if sort == "median_fix":
        rows = sorted(rows, key=lambda r: (r["median_fix_seconds"] is None, -(r["median_fix_seconds"] or 0),
                                           r["label"].lower()))
    return rows, sort


def integration_breakdown(request, snapshot, directory):
    """The overview's "By integration" rows, with the median time to fix, sorted by `?integration_sort=`."""
    rows = breakdown_rows(snapshot.by_integration, lambda k: directory.integrations.get(k, "No integration"),
                          "integration")
    rows, sort = sorted_breakdown(request, rows, scopes.INTEGRATION, "integration_sort")
    return {"by_integration": rows, "integration_sort": sort}


def owners(request):
    snapshot = latest_snapshot()
    directory = Directory()
    rows, sort = sorted_breakdown(request, breakdown_rows(snapshot.by_owner, directory.owner_label, "owner"),
                                  scopes.OWNER)
    return render(request, "dashboard/breakdown.html", {
        "title": "Owners", "rows": rows, "param": "owner", "snapshot": snapshot, "sort": sort,
        "intro": "Every person and group that owns assets, with the most open issues first: who to talk to first.",
        "unowned": snapshot.totals.get("unowned_all", snapshot.totals.get("unowned", 0)),
        "unowned_snoozed": max(0, snapshot.totals.get("unowned_all", 0) - snapshot.totals.get("unowned", 0)),
        "rule_labels": registry.labels(),
        "rule_keys": [rule for rule in registry.keys() if rule != "unowned"],
    })


def teams(request):
    snapshot = latest_snapshot()
    directory = Directory()
    rows, sort = sorted_breakdown(request, breakdown_rows(snapshot.by_team, team_label(directory), "team"),
                                  scopes.TEAM)
    return render(request, "dashboard/breakdown.html", {
        "title": "Teams", "rows": rows, "param": "team", "snapshot": snapshot, "sort": sort,
        "intro": "Every Secoda team with assets, with the most open issues first.",
        "rule_keys": registry.keys(), "rule_labels": registry.labels(),
    })


# -- snoozes -------------------------------------------------------------------------

def safe_next(request, fallback):
    """Where a form sends the steward back: its `next` when that is a path on this site, else `fallback`."""
    target = request.POST.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


@require_POST
@steward_required
def snooze_create(request):
    form = SnoozeForm(request.POST)
    fallback = reverse("dashboard:snoozes")
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            messages.error(request, f"Not snoozed. {label + ': ' if label else ''}{' '.join(errors)}")
        return HttpResponseRedirect(safe_next(request, fallback))
    data = form.cleaned_data
    snooze = Snooze(rule=data["rule"], reason=data["reason"], expires_at=form.expires_at(), created_by=request.user)
    if data["resource"]:
        snooze.resource = get_object_or_404(Resource, pk=data["resource"])
        target = snooze.resource.title_full or snooze.resource.pk
    else:
        filterset = filterset_from_query(data["filter_query"])
        if not filterset.is_valid() or not filterset.describe():
            messages.error(request, "Not snoozed: choose at least one valid filter first (snoozing everything "
                                    "would hide the whole catalog).")
            return HttpResponseRedirect(safe_next(request, fallback))
        snooze.filter_query = data["filter_query"]
        snooze.filter_label = filterset.describe()[:300]
        target = f"everything matching {snooze.filter_label}"
    snooze.save()
    take_snapshot(Snapshot.SNOOZE)
    what = registry.labels().get(snooze.rule, "every rule").lower() if snooze.rule else "every rule"
    messages.success(request, f"Snoozed {what} for {target} until {data['until']:%b %-d, %Y}. The counts are updated.")
    return HttpResponseRedirect(safe_next(request, fallback))


@require_POST
@steward_required
def snooze_cancel(request, pk):
    snooze = get_object_or_404(Snooze, pk=pk, cancelled_at__isnull=True)
    snooze.cancelled_at = timezone.now()
    snooze.cancelled_by = request.user
    snooze.save(update_fields=["cancelled_at", "cancelled_by"])
    take_snapshot(Snapshot.SNOOZE)
    messages.success(request, "The snooze was ended; those issues count again.")
    return HttpResponseRedirect(safe_next(request, reverse("dashboard:snoozes")))


def snoozes(request):
    now = timezone.now()
    all_snoozes = Snooze.objects.select_related("resource", "created_by", "cancelled_by").order_by("-created_at")
    return render(request, "dashboard/snoozes.html", {
        "active": [s for s in all_snoozes if s.cancelled_at is None and s.expires_at > now],
        "ended": [s for s in all_snoozes if s.cancelled_at is not None or s.expires_at <= now][:100],
        "rule_labels": registry.labels(), "can_edit": is_steward(request.user),
    })

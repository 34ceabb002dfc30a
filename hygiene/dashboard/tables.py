import django_tables2 as tables
from django.utils import timezone
from django.db.models import F
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import mark_safe

from catalog_sync.normalize import http_url
from hygiene.lifecycle.ages import open_for_words, with_open_since
from hygiene.rulebook import registry


def _nulls_last(field, descending):
    return F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_last=True)


class ResourceTable(tables.Table):
    pk = tables.CheckBoxColumn(accessor="pk", attrs={"th__input": {"id": "select-page", "aria-label": "Select this page"},
                                                     "td__input": {"class": "row-check", "aria-label": "Select"}})
    title_full = tables.Column(verbose_name="Resource", order_by=("title_full", "id"),
                               attrs={"td": {"class": "col-title"}, "th": {"class": "col-title"}})
    entity_type = tables.Column(verbose_name="Type")
    native_type = tables.Column(verbose_name="Native type")
    integration = tables.Column(accessor="integration__name", verbose_name="Integration",
                                order_by=("integration__name", "title_full"), default="—")
    issues = tables.Column(empty_values=(), orderable=False, verbose_name="Issues")
    health = tables.Column(verbose_name="Health", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    # How long the issue has been open (the list's rule, or the oldest of any rule): from the issue history.
    open_for = tables.Column(accessor="open_since", verbose_name="Open for", default="—",
                             attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    owners = tables.Column(empty_values=(), orderable=False, verbose_name="Owners")
    teams = tables.Column(empty_values=(), orderable=False, verbose_name="Team")
    tags = tables.Column(empty_values=(), orderable=False, verbose_name="Tags")
    external_usage = tables.Column(verbose_name="Usage", attrs={"td": {"class": "num"}, "th": {"class": "num"}},
                                   default="—")
    internal_usage = tables.Column(verbose_name="Views in Secoda", default="—",
                                   attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    pii = tables.BooleanColumn(verbose_name="PII")
    verified = tables.BooleanColumn(verbose_name="Verified")
    published = tables.BooleanColumn(verbose_name="Published")
    updated_at = tables.DateTimeColumn(verbose_name="Updated", format="Y-m-d", default="—",
                                       attrs={"td": {"class": "col-updated"}})
    # Days since Secoda last updated the resource: how long a stale one has been left alone.
    stale_for = tables.Column(accessor="updated_at", verbose_name="Stale for", default="—",
                              attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    url = tables.Column(verbose_name="Secoda", orderable=False, empty_values=())

    # "Updated" is one choice away: "Open for" says more about an issue, and both do not fit a laptop.
    DEFAULT_COLUMNS = ("title_full", "entity_type", "integration", "issues", "health", "open_for", "owners", "teams",
                       "tags", "external_usage", "url")
    # A list can start from other columns than the rest (until the steward chooses their own).
    RULE_DEFAULT_COLUMNS = {
        # "Stale for" (days since Secoda updated it) says what "Open for" would, in Secoda's own terms.
        "stale": ("title_full", "entity_type", "integration", "issues", "health", "owners", "teams",
                  "tags", "external_usage", "stale_for", "url"),
    }
    ALWAYS = ("title_full",)
    OWNERS_SHOWN = 1  # names shown before "+N"; the whole list is in the cell's title and on the resource page
    STEWARD_ONLY = ("pk",)

    class Meta:
        template_name = "django_tables2/bootstrap5.html"
        attrs = {"class": "data resource-table"}
        order_by = ("title_full",)
        per_page = 50
        empty_text = "Nothing here: no resource matches these filters."

    def __init__(self, *args, directory=None, rule=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.directory = directory
        self.rule = rule  # whose issue "Open for" means (None: the oldest open issue)

    # Blanks sort last either way; titles sort without regard to case.
    def order_external_usage(self, queryset, is_descending):
        return queryset.order_by(_nulls_last("external_usage", is_descending), "id"), True

    def order_internal_usage(self, queryset, is_descending):
        return queryset.order_by(_nulls_last("internal_usage", is_descending), "id"), True

    def order_updated_at(self, queryset, is_descending):
        return queryset.order_by(_nulls_last("updated_at", is_descending), "id"), True

    def order_stale_for(self, queryset, is_descending):
        # Longest stale first = least recently updated first.
        return queryset.order_by(_nulls_last("updated_at", not is_descending), "id"), True

    def page_queryset(self, queryset):
        """A page's rows with when their issue opened (IssuePaginator reads a page's rows through this)."""
        return with_open_since(queryset, self.rule)

    def order_open_for(self, queryset, is_descending):
        # Shortest open first = most recently opened first; lists without history (no interval) last either way.
        # The id breaks ties in the same direction, as the (issues_open_since, id) indexes walk.
        self.open_for_descending = is_descending
        return with_open_since(queryset, self.rule).order_by(_nulls_last("open_since", not is_descending),
                                                             "id" if is_descending else "-id"), True

    def page_ids(self, queryset, bottom, top):
        """The ids of the rows from `bottom` to `top` in the list's order (IssuePaginator reads a page's ids
        through this). One rule's list sorted by "Open for" is read in two parts: the rows with an open interval
        of the rule, walked in the order of the (rule, opened_at, resource) index of open intervals and stopped
        at the page, then (for the last pages only) those without one, which sort last. As one query, the outer
        join and the blanks last would sort every row of the list before the first page."""
        descending = getattr(self, "open_for_descending", None)
        if self.rule is None or descending is None:
            return list(queryset.values_list("pk", flat=True)[bottom:top])
        opened = queryset.filter(open_since__isnull=False).order_by(
            *(("open_since", "id") if descending else ("-open_since", "-id")))
        ids = list(opened.values_list("pk", flat=True)[bottom:top])
        if len(ids) == top - bottom:
            return ids
        opened_count = bottom + len(ids) if ids or not bottom else opened.count()
        unopened = queryset.filter(open_since__isnull=True).order_by("id" if descending else "-id")
        return ids + list(unopened.values_list("pk", flat=True)[max(0, bottom - opened_count):top - opened_count])

    @classmethod
    def default_columns(cls, rule=None):
        return cls.RULE_DEFAULT_COLUMNS.get(rule, cls.DEFAULT_COLUMNS)

    def order_health(self, queryset, is_descending):
        # The stored score with an id tie-breaker (equal scores never shuffle rows between pages),
        # in the direction of the (health_score, id) index.
        fields = ("-health_score", "-id") if is_descending else ("health_score", "id")
        return queryset.order_by(*fields), True

    def order_title_full(self, queryset, is_descending):
        title = Lower("title_full")
        return queryset.order_by(title.desc() if is_descending else title.asc(), "id"), True

    def render_title_full(self, record, value):
        return resource_link(record)

    def render_entity_type(self, value):
        return value.replace("_", " ").capitalize()

    def render_issues(self, record):
        rules = registry.rules()
        broken = [rule for rule in rules if getattr(record, f"breaks_{rule.key}", False)]
        snoozed = [rule for rule in rules if getattr(record, f"snoozed_{rule.key}", False)]
        if not broken and not snoozed:
            return mark_safe('<span class="muted">None</span>')
        return format_html_join(" ", '<span class="pill rule-pill rule-{}{}" title="{}">{}</span>', (
            *((rule.css, "", "Open issue", rule.label) for rule in broken),
            *((rule.css, " snoozed", "Snoozed", f"{rule.label} (snoozed)") for rule in snoozed),
        ))

    def render_health(self, value):
        if value is None:
            return "—"
        band = "good" if value >= 80 else "fair" if value >= 50 else "poor"
        return format_html('<span class="health health-{}">{}</span>', band, value)

    def render_owners(self, record):
        names = self.directory.owner_names(record)
        if not names:
            return mark_safe('<span class="muted">No owner</span>')
        if len(names) <= self.OWNERS_SHOWN:
            return ", ".join(names)
        # "Ada L. +2" on screen; the full list in the title (pointer) and for screen readers.
        everyone = ", ".join(names)
        shown = ", ".join(short_name(name) for name in names[:self.OWNERS_SHOWN])
        return format_html('<span class="owner-list" title="{}"><span aria-hidden="true">{} '
                           '<span class="more">+{}</span></span><span class="visually-hidden">{}</span></span>',
                           everyone, shown, len(names) - self.OWNERS_SHOWN, everyone)

    @staticmethod
    def render_stale_for(value):
        if value is None:
            return "—"
        days = (timezone.now() - value).days
        words = "under a day" if days < 1 else f"{days:,} day{'s' if days != 1 else ''}"
        updated = timezone.localtime(value).strftime("%Y-%m-%d")
        return format_html('<span title="Last updated {}">{}</span>', updated, words)

    def render_open_for(self, record):
        since = getattr(record, "open_since", None)
        if since is None:
            return "—"
        seen = getattr(record, "open_since_seen", False)
        if not hasattr(self, "_now"):
            self._now = timezone.now()  # one "now" for every row of the page
        day = timezone.localtime(since).strftime("%Y-%m-%d")
        return format_html('<span title="Open {}since {}">{}</span>', "at least " if seen else "", day,
                           open_for_words(since, seen, self._now))

    def render_teams(self, record):
        return ", ".join(self.directory.team_names(record.teams)) or "—"

    def render_tags(self, record):
        names = self.directory.tag_names(record.tags)
        return format_html_join(" ", '<span class="tag">{}</span>', ((n,) for n in names)) if names else "—"

    # -- which columns show ------------------------------------------------------------

    @classmethod
    def choosable_columns(cls):
        return [name for name in cls.base_columns if name not in cls.ALWAYS and name not in cls.STEWARD_ONLY]

    @classmethod
    def visible_columns(cls, request, steward, rule=None):
        """Columns chosen by the user (kept in the session), always with the title (and, for stewards,
        the selection checkboxes)."""
        if "columns" in request.GET:
            chosen = [c for c in request.GET.getlist("columns") if c in cls.choosable_columns()]
            request.session["resource_columns"] = chosen
        chosen = set(request.session.get("resource_columns") or cls.default_columns(rule))
        chosen |= set(cls.ALWAYS) | (set(cls.STEWARD_ONLY) if steward else set())
        return [c for c in cls.base_columns if c in chosen]

    # -- fast body ----------------------------------------------------------------------
    # django-tables2 renders each cell through signature inspection and per-cell attribute
    # objects (about 1 ms a row here); the body of this table is rendered directly instead,
    # with the same render_* methods, so a 200-row page costs milliseconds.

    CELL_CLASSES = {"health": "num", "external_usage": "num", "internal_usage": "num", "stale_for": "num col-age",
                    "open_for": "num col-age",
                    "owners": "col-owners",
                    "title_full": "col-title", "updated_at": "col-updated"}

    def body_html(self):
        # Each cell's opening tag is built once per page (the classes are ours, not data); every value still
        # goes through conditional_escape, as format_html would put it.
        cells = [(column.name, f'<td class="{self.CELL_CLASSES.get(column.name, "")}">') for column in self.columns]
        rows = []
        for row in self.page.object_list if hasattr(self, "page") else self.rows:
            record = row.record
            rows.append("<tr>" + "".join(f"{opening}{conditional_escape(self.cell(name, record))}</td>"
                                         for name, opening in cells) + "</tr>")
        return mark_safe("".join(rows))

    def cell(self, name, record):
        if name == "pk":
            return format_html('<input type="checkbox" name="pk" value="{}" class="row-check" aria-label="Select">',
                               record.pk)
        if name == "integration":
            return record.integration.name if record.integration_id and record.integration else "—"
        if name in ("issues", "owners", "teams", "tags", "open_for"):
            return getattr(self, f"render_{name}")(record)
        if name == "stale_for":
            return self.render_stale_for(record.updated_at)
        value = getattr(record, name)
        if name in ("pii", "verified", "published"):
            return mark_safe('<span class="true">✔</span>') if value else mark_safe('<span class="false">✘</span>')
        if name == "updated_at":
            return value.strftime("%Y-%m-%d") if value else "—"
        if value is None or value == "":
            return "—"
        if name == "title_full":
            return self.render_title_full(record, value)
        if name == "entity_type":
            return self.render_entity_type(value)
        if name == "health":
            return self.render_health(value)
        if name == "url":
            return self.render_url(value)
        if name in ("external_usage", "internal_usage"):
            return f"{value:,}"  # as every other count on the dashboard
        return value

    def render_url(self, value):
        value = http_url(value)
        if not value:
            return "—"
        return format_html('<a href="{}" target="_blank" rel="noopener" aria-label="Open in Secoda (new tab)">'
                           'Open ↗</a>', value)


def resource_link(resource):
    """A link to the resource's page, named by its path; long dotted paths break after a dot, not in the middle
    of a name."""
    title = format_html_join(mark_safe(".<wbr>"), "{}", ((part,) for part in
                                                        str(resource.title_full or resource.title or resource.pk)
                                                        .split(".")))
    return format_html('<a href="{}" title="{}">{}</a>', reverse("dashboard:resource", args=[resource.pk]),
                       resource.pk, title)


def short_name(name):
    """'Ada Lovelace' -> 'Ada L.'; a group or a one-word name stays as it is."""
    if name.endswith(" (group)"):
        return name[:-len(" (group)")]
    words = name.split()
    if len(words) < 2 or "@" in name:
        return name.split("@")[0] if "@" in name else name
    return f"{words[0]} {words[-1][0]}."

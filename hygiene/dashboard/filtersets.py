"""ResourceFilterSet: the one source of filter logic for issue lists, CSV
exports, filter-wide snoozes and (later) "select all matching".

"Open longer than" and "New since" read the issue history of one rule: the list's (`rule=`), or, without one
(all issues, saved views, rule scopes), any rule in force; each on its own (on all issues, one issue may be new
and another old)."""
import functools

import django_filters
from django import forms
from django.db.models import Q
from django.http import QueryDict

from catalog_sync.models import Integration, Resource, ResourceRef, SecodaGroup, SecodaUser, Tag, Team
from catalog_sync.filters import TYPE_ORDER
from hygiene.dashboard.models import Snapshot
from hygiene.lifecycle import ages
from hygiene.rules import in_scope

NO_OWNER = "none"
YES_NO_ANY = forms.Select(choices=[("", "Any"), ("true", "Yes"), ("false", "No")])


def ref_q(kind, ref_id):
    return Q(pk__in=ResourceRef.objects.filter(kind=kind, ref_id=ref_id).values("resource_id"))


NO_TEAM = "none"


def team_choices():
    teams = sorted(Team.objects.present().values_list("id", "name"), key=lambda t: (t[1] or "").lower())
    return [(NO_TEAM, "No team"), *teams]


def owner_choices():
    users = [(f"user:{u.pk}", u.display_name) for u in SecodaUser.objects.present().only(
        "id", "first_name", "last_name", "email")]
    groups = [(f"group:{g.pk}", f"{g.name} (group)") for g in SecodaGroup.objects.present().only("id", "name")]
    return [(NO_OWNER, "No owner"), *sorted(users, key=lambda c: c[1].lower()),
            *sorted(groups, key=lambda c: c[1].lower())]


def entity_type_choices():
    snapshot = Snapshot.objects.first()  # the newest, as it is (no refresh from here)
    known = set(snapshot.by_entity_type) if snapshot else set()
    ordered = [t for t in TYPE_ORDER if t in known] + sorted(known - set(TYPE_ORDER))
    return [(t, t.replace("_", " ").capitalize()) for t in (ordered or TYPE_ORDER)]


class ResourceFilterForm(forms.Form):
    """Ranges that cannot match anything are refused with a message, not answered with an empty list."""

    def clean(self):
        data = super().clean()
        for low, high, what in (("updated_after", "updated_before", "date"), ("usage_min", "usage_max", "usage")):
            if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
                self.add_error(high, f"This {what} is before the one it should follow "
                                     f"({self.fields[low].label.lower()} {data[low]}), so nothing could match.")
        return data


# Filters that read the issue history. A snooze closes the intervals it covers, so a snooze by one of them
# would stop matching at the next snapshot and start again at the one after: snoozes refuse them.
HISTORY_FILTERS = ("open_days", "new_since", "overdue")


class WholeNumberFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField  # "1.5 days" is refused, not rounded


class ResourceFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search",
                                  widget=forms.TextInput(attrs={"placeholder": "Title or path contains…"}))
    integration = django_filters.ModelMultipleChoiceFilter(
        queryset=Integration.objects.present(), label="Integration", distinct=False,  # a plain FK: no DISTINCT
        widget=forms.CheckboxSelectMultiple)  # ticked, not Ctrl-clicked
    entity_type = django_filters.MultipleChoiceFilter(choices=entity_type_choices, label="Type",
                                                      widget=forms.CheckboxSelectMultiple)
    native_type = django_filters.CharFilter(field_name="native_type", lookup_expr="iexact", label="Native type")
    team = django_filters.ChoiceFilter(choices=team_choices, method="with_team", label="Team",
                                       empty_label="Any team")
    owner = django_filters.ChoiceFilter(choices=owner_choices, method="with_owner", label="Owner",
                                        empty_label="Anyone")
    tag = django_filters.ModelChoiceFilter(queryset=Tag.objects.present(), method="with_tag", label="Tag",
                                           empty_label="Any tag")
    usage_min = django_filters.NumberFilter(field_name="external_usage", lookup_expr="gte", label="Usage at least",
                                            min_value=0)
    usage_max = django_filters.NumberFilter(field_name="external_usage", lookup_expr="lte", label="Usage at most",
                                            min_value=0)
    pii = django_filters.BooleanFilter(label="PII", widget=YES_NO_ANY)
    verified = django_filters.BooleanFilter(label="Verified", widget=YES_NO_ANY)
    published = django_filters.BooleanFilter(label="Published", widget=YES_NO_ANY)
    updated_after = django_filters.DateFilter(field_name="updated_at", lookup_expr="date__gte",
                                              label="Updated on or after",
                                              widget=forms.DateInput(attrs={"type": "date"}))
    updated_before = django_filters.DateFilter(field_name="updated_at", lookup_expr="date__lte",
                                               label="Updated on or before",
                                               widget=forms.DateInput(attrs={"type": "date"}))
    open_days = WholeNumberFilter(method="with_open_days", label="Open longer than (days)", min_value=0,
                                  max_value=ages.MAX_OPEN_DAYS)
    new_since = django_filters.DateFilter(method="with_new_since", label="New since",
                                          widget=forms.DateInput(attrs={"type": "date"}))
    overdue = django_filters.BooleanFilter(method="with_overdue", label="Past its fix-within time",
                                           widget=YES_NO_ANY)

    class Meta:
        model = Resource
        fields = []
        form = ResourceFilterForm

    def __init__(self, *args, rule=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rule = rule or None  # whose open issues "Open longer than" and "New since" look at; None: any rule
        # The teams, read at most once for this list (checking, describing and drawing the form all look).
        self.filters["team"].extra["choices"] = functools.cache(team_choices)

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(title_full__icontains=value) | Q(title__icontains=value))

    def with_team(self, queryset, name, team):
        if team == NO_TEAM:
            return queryset.exclude(pk__in=ResourceRef.objects.filter(kind=ResourceRef.TEAM).values("resource_id"))
        return queryset.filter(ref_q(ResourceRef.TEAM, team))

    def with_tag(self, queryset, name, tag):
        return queryset.filter(ref_q(ResourceRef.TAG, tag.pk))

    def with_owner(self, queryset, name, value):
        if value == NO_OWNER:
            return queryset.filter(is_owned=False)
        kind, _, ref_id = value.partition(":")
        return queryset.filter(ref_q(ResourceRef.OWNER if kind == "user" else ResourceRef.OWNER_GROUP, ref_id))

    # The rules in force (`hygiene.rulebook.registry.rules`), set when the rulebook app is ready: the registry
    # builds rule scopes with this filterset, so this module cannot import it.
    rules_in_force = staticmethod(lambda: [])

    def history_rules(self):
        return [self.rule] if self.rule else [rule.key for rule in self.rules_in_force()]

    def with_open_days(self, queryset, name, days):
        return queryset.filter(ages.open_longer_than(self.history_rules(), days))

    def with_new_since(self, queryset, name, day):
        return queryset.filter(ages.new_since(self.history_rules(), day))

    def with_overdue(self, queryset, name, overdue):
        """An open issue (of the list's rule, else any) older than its rule's "fix within" days."""
        rules = set(self.history_rules())
        ids = ages.overdue_ids({rule.key: rule.sla_days for rule in self.rules_in_force()
                                if rule.sla_days and rule.key in rules})
        return queryset.filter(pk__in=ids) if overdue else queryset.exclude(pk__in=ids)

    def describe(self):
        """Plain words for the active filters: "Integration: Snowflake; Owner: No owner"."""
        if not self.is_bound or not self.is_valid():
            return ""
        parts = []
        for name, value in self.form.cleaned_data.items():
            if value in (None, "", [], ()) or (hasattr(value, "exists") and not value.exists()):
                continue
            field = self.form.fields[name]
            if hasattr(value, "__iter__") and not isinstance(value, str):
                shown = ", ".join(str(dict(field.choices).get(v, v)) if hasattr(field, "choices") and
                                  not hasattr(v, "pk") else str(v) for v in value)
            elif hasattr(field, "choices") and not hasattr(value, "pk"):
                shown = str(dict(field.choices).get(value, value))
            else:
                shown = ("yes" if value else "no") if isinstance(value, bool) else str(value)
            parts.append(f"{field.label}: {shown}")
        return "; ".join(parts)


def applied_query(filterset):
    """The query string of the filters that applied (invalid ones dropped): only filter parameters, in the
    form's order, each one's values stripped, de-duplicated and sorted, no empty ones. Two equal filters
    give one string (snoozes, selections and saved views store it)."""
    query = QueryDict(mutable=True)
    for name in filterset.form.fields:
        values = sorted({value.strip() for value in filterset.data.getlist(name) if value.strip()})
        if values:
            query.setlist(name, values)
    return query.urlencode()


def filterset_from_query(query, queryset=None, rule=None):
    """A bound filterset from a stored query string (snoozes, saved selections); `rule`: the list's rule."""
    return ResourceFilterSet(QueryDict(query), queryset=queryset if queryset is not None else in_scope(), rule=rule)

"""The rule builder's forms: the rule's own fields, one small form per clause row, and the issue lists' filters
as its scope. They only collect what the steward typed; `services.clean_definition` decides what is valid, and
`RuleBuilder.clean` puts each of its messages beside the field it concerns."""
import re

from django import forms
from django.http import QueryDict

from catalog_sync.models import Integration, SecodaGroup, SecodaUser, Tag, Team
from hygiene.dashboard.filtersets import HISTORY_FILTERS, ResourceFilterSet, applied_query
from hygiene.rulebook import conditions, services
from hygiene.rulebook.models import Rule
from hygiene.rules import in_scope

ROWS = 6  # clause rows offered on a new rule; "Add a clause" adds one, up to conditions.MAX_CLAUSES

# The builder's field menu, grouped by kind.
GROUPS = [
    ("Text", (conditions.TEXT,)), ("People, labels and source", (conditions.LIST, conditions.INTEGRATION)),
    ("Flags", (conditions.BOOL,)), ("Numbers", (conditions.NUMBER,)), ("Dates", (conditions.DATE,)),
]


def field_choices():
    groups = [(title, [(name, label) for name, (label, kind) in conditions.FIELDS.items() if kind in kinds])
              for title, kinds in GROUPS]
    return [("", "Choose a field"), *groups]


def operator_choices():
    return [("", "Choose a test"), *((op, label) for op, (label, _, _) in conditions.OPERATORS.items())]


def operator_map():
    """What the builder's script needs to offer only the tests that fit a field, and the right suggestions."""
    return {
        "fields": {name: conditions.operators_for(name) for name in conditions.FIELDS},
        "lists": {name: f"names-{name}" for name in conditions.REF_MODELS},
        "values": {op: wants for op, (_, wants, _) in conditions.OPERATORS.items()},
        "flags": [name for name, (_, kind) in conditions.FIELDS.items() if kind == conditions.BOOL],
    }


def ref_names():
    """(field, id) -> name for everything a clause may point at, and per field the (id, name) suggestions of
    what is still in Secoda: five queries, whatever the number of rules or clauses."""
    names, suggestions = {}, {}
    people = SecodaUser.objects.only("id", "first_name", "last_name", "email", "removed_at")
    sources = {"owners": [(u.pk, u.display_name, u.removed_at) for u in people]}
    for field, model in (("owners_groups", SecodaGroup), ("tags", Tag), ("teams", Team),
                         ("integration", Integration)):
        sources[field] = [(pk, name or pk, gone) for pk, name, gone in
                          model.objects.values_list("id", "name", "removed_at")]
    for field, rows in sources.items():
        for pk, name, _ in rows:
            names[(field, pk)] = name
        suggestions[field] = sorted(((pk, name) for pk, name, gone in rows if gone is None),
                                    key=lambda item: str(item[1]).lower())
    return names, suggestions


def describe_condition(clauses, match, names=None):
    joiner = " and " if match == Rule.ALL else " or "
    return joiner.join(conditions.describe(clause, names) for clause in clauses)


class RuleForm(forms.Form):
    """A rule's own fields. Lenient on purpose: `services.clean_definition` says what is wrong, in its words."""

    name = forms.CharField(label="Name", required=False, widget=forms.TextInput(attrs={
        "maxlength": 80, "autocomplete": "off", "placeholder": "e.g. PII columns that are not verified"}))
    explanation = forms.CharField(
        label="Explanation (optional)", required=False,
        help_text="One sentence stewards see beside the count. Left blank, the condition in words is used.",
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": 300}))
    weight = forms.CharField(label="Weight", required=False, initial=10,
                             help_text="Points off a resource's 0–100 health score while it breaks this rule.",
                             widget=forms.NumberInput(attrs={"min": 0, "max": services.MAX_WEIGHT, "step": 1,
                                                             "inputmode": "numeric"}))
    sla_days = forms.CharField(label="Fix within (days, optional)", required=False,
                               help_text="An issue open longer than this is overdue: counted on the overview, "
                                         "badged and listed in reports. Blank: no deadline.",
                               widget=forms.NumberInput(attrs={"min": 1, "max": 3650, "step": 1,
                                                               "inputmode": "numeric"}))
    enabled = forms.BooleanField(label="Switched on: the overview, lists and health scores count it",
                                 required=False, initial=True)
    match = forms.CharField(label="Flag a resource when", required=False, initial=Rule.ALL,
                            widget=forms.RadioSelect(choices=Rule.MATCH_CHOICES))

    def __init__(self, *args, builtin=False, **kwargs):
        super().__init__(*args, **kwargs)
        if builtin:
            for name in ("name", "explanation", "match"):
                del self.fields[name]

    def values(self):
        """What was typed (bound) or is stored (initial), as `clean_definition` takes it."""
        if not self.is_bound:
            return {name: self.initial.get(name, field.initial) for name, field in self.fields.items()}
        return {name: field.widget.value_from_datadict(self.data, self.files, self.add_prefix(name))
                for name, field in self.fields.items()}


class ClauseForm(forms.Form):
    """One row of the condition: a field, a test and a value (none, a number, words, a pattern or an id)."""

    field = forms.CharField(label="Field", required=False, widget=forms.Select(choices=field_choices))
    op = forms.CharField(label="Test", required=False, widget=forms.Select(choices=operator_choices))
    value = forms.CharField(label="Value", required=False,
                            widget=forms.TextInput(attrs={"autocomplete": "off", "class": "clause-value",
                                                          "maxlength": conditions.MAX_TEXT}))

    def __init__(self, *args, row=0, **kwargs):
        super().__init__(*args, prefix=f"clause-{row}", **kwargs)
        self.row = row
        self.number = row + 1
        self.hint = ""  # the name of the owner, tag... a value's id stands for (set by the page)
        chosen = self["field"].value()
        if chosen in conditions.REF_MODELS:  # suggestions without the script, too
            self.fields["value"].widget.attrs["list"] = f"names-{chosen}"

    def raw(self):
        """The row as typed: (field, op, value), stripped."""
        return tuple(str(self[name].value() or "").strip() for name in ("field", "op", "value"))

    @property
    def empty(self):
        return not any(self.raw())

    def error_field(self, clause):
        """Which input a message about `clause` belongs to, following the order `conditions.check` checks in."""
        field, op = clause.get("field"), clause.get("op")
        if field not in conditions.FIELDS:
            return "field"
        if op not in conditions.OPERATORS or op not in conditions.operators_for(field):
            return "op"
        return "value"


def resolve_ref(field, op, value):
    """A name typed for an owner, group, tag, team or integration becomes its id when exactly one thing still in
    Secoda has it (ids are kept as they are)."""
    model = conditions.REF_MODELS.get(field)
    wants = conditions.OPERATORS.get(op, ("", None, ()))[1]
    if model is None or not value or not (wants == conditions.REF or field == "integration"):
        return value
    if model.objects.filter(pk=value).exists():
        return value
    if model is SecodaUser:
        matches = [u.pk for u in model.objects.present() if value.lower() in
                   (u.display_name.lower(), (u.email or "").lower())]
    else:
        matches = list(model.objects.present().filter(name__iexact=value).values_list("pk", flat=True)[:2])
    return matches[0] if len(matches) == 1 else value


def clause_rows(data=None, initial=(), wanted=0):
    """Clause forms: at least ROWS (or as many as the rule has, or as `wanted`), at most MAX_CLAUSES."""
    used = 0
    if data is not None:
        used = max((n + 1 for n in range(conditions.MAX_CLAUSES) if any(
            str(data.get(f"clause-{n}-{part}", "")).strip() for part in ("field", "op", "value"))), default=0)
    count = min(conditions.MAX_CLAUSES, max(ROWS, len(initial), used, wanted))
    if data is not None:
        return [ClauseForm(data, row=n) for n in range(count)]
    return [ClauseForm(initial=initial[n] if n < len(initial) else None, row=n) for n in range(count)]


def wanted_rows(data):
    try:
        return max(0, min(conditions.MAX_CLAUSES, int(str(data.get("rows", "")).strip())))
    except ValueError:
        return 0


class RuleBuilder:
    """The builder page's forms together. `clean()` returns the checked definition or None, with every
    message placed: on its field, beside its clause row, on the scope or on the condition as a whole."""

    def __init__(self, rule=None, data=None, scope=None, extra_row=False):
        self.rule = rule
        self.builtin = bool(rule and rule.builtin)
        self.bound = data is not None
        self.scope_error = self.condition_error = ""
        self.other_errors = []
        if rule is not None:
            initial = {"name": rule.name, "explanation": rule.explanation, "weight": rule.weight,
                       "enabled": rule.enabled, "match": rule.match, "sla_days": rule.sla_days or ""}
        else:
            initial = {"weight": 10, "enabled": True, "match": Rule.ALL}
        self.form = RuleForm(data, initial=initial, builtin=self.builtin)
        if self.builtin:
            self.clauses, self.filterset = [], None
            return
        if data is not None:
            wanted = wanted_rows(data) + (1 if extra_row else 0)
            self.clauses = clause_rows(data, wanted=wanted)
            scope_data = data
        else:
            stored = [{"field": c.get("field"), "op": c.get("op"), "value": c.get("value", "")}
                      for c in (rule.clauses if rule else []) if isinstance(c, dict)]
            self.clauses = clause_rows(initial=stored)
            scope_data = QueryDict(scope if scope is not None else (rule.scope if rule else ""))
        self.filterset = ResourceFilterSet(scope_data, queryset=in_scope())
        for name in HISTORY_FILTERS:  # a rule's scope cannot read the history its own issues write
            self.filterset.filters.pop(name, None)
        self.can_add_row = len(self.clauses) < conditions.MAX_CLAUSES

    @property
    def scope_query(self):
        return applied_query(self.filterset) if self.filterset is not None else ""

    def definition(self):
        """The raw definition (and, per clause, the row it came from) for `clean_definition`."""
        data = self.form.values()
        if self.builtin:
            return data, []
        data["scope"] = self.scope_query
        clauses, rows = [], []
        for row in self.clauses:
            field, op, value = row.raw()
            if not field:
                if op or value:
                    row.add_error("field", "Choose a field for this clause, or clear its test and value.")
                continue
            if not op:
                row.add_error("op", "Choose a test for this clause.")
                continue
            clauses.append({"field": field, "op": op, "value": resolve_ref(field, op, value)})
            rows.append(row)
        data["clauses"] = clauses
        return data, rows

    def clean(self):
        data, rows = self.definition()
        if self.builtin:
            data = {"weight": data.get("weight"), "enabled": data["enabled"], "sla_days": data.get("sla_days")}
        stray = any(row.errors for row in self.clauses)
        try:
            cleaned = services.clean_definition(data, builtin=self.builtin)
        except services.RuleError as exc:
            self.place(exc.errors, data.get("clauses", []), rows)
            return None
        if stray:
            return None
        return cleaned

    def place(self, errors, clauses, rows):
        for key, message in errors.items():
            if key in self.form.fields:
                self.form.add_error(key, message)
            elif key == "scope":
                self.scope_error = message
            elif key == "clauses":
                if not any(row.errors for row in self.clauses):  # else the rows say what is missing
                    self.condition_error = message
            elif re.fullmatch(r"clauses\.\d+", key) and int(key.split(".")[1]) < len(rows):
                index = int(key.split(".")[1])
                row = rows[index]
                row.add_error(row.error_field(clauses[index]), message)
            elif key.startswith("clauses"):
                self.condition_error = message
            else:
                self.other_errors.append(message)

    @property
    def has_errors(self):
        return bool(self.form.errors or self.scope_error or self.condition_error or self.other_errors
                    or any(row.errors for row in self.clauses))

    def error_list(self):
        """(anchor id, what, message) for the error summary at the top of the page."""
        found = []
        for name, field_errors in self.form.errors.items():
            label = self.form.fields[name].label if name in self.form.fields else "Rule"
            anchor = self.form[name].auto_id if name in self.form.fields else "rule-form"
            if name == "match":
                anchor = f"{anchor}_0"
            found += [(anchor, label.split(":")[0], message) for message in field_errors]
        if self.scope_error:
            found.append(("scope-legend", "Applies to", self.scope_error))
        if self.condition_error:
            found.append(("condition-legend", "Condition", self.condition_error))
        for row in self.clauses:
            for name, field_errors in row.errors.items():
                found += [(row[name].auto_id, f"Clause {row.number}", message) for message in field_errors]
        found += [("rule-form", "Rule", message) for message in self.other_errors]
        return found

    def add_hints(self, names):
        """Beside a value that is an id, the name it stands for (names from `ref_names`)."""
        for row in self.clauses:
            field, _, value = row.raw()
            if field in conditions.REF_MODELS and (field, value) in names:
                row.hint = str(names[(field, value)])

"""The migration page's forms: which integrations and renames (matching, a GET anyone may run), and what to copy
(the preview, a steward's POST). The ambiguous choices travel as `pick-<old id>` fields beside them."""
from django import forms
from django.http import QueryDict

from hygiene.migration.matching import MappingError, format_mapping, parse_mapping
from hygiene.migration.services import COPY_LABELS, COPYABLE

PICK_PREFIX = "pick-"
MAX_PICKS = 2000


class LinkedErrors:
    """Each field with an error is announced with it: `aria-describedby` names the error's id as well as the
    help's (the ids the templates give them)."""

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                attrs = self.fields[name].widget.attrs
                helptext = f"{self[name].auto_id}_helptext" if self.fields[name].help_text else ""
                attrs["aria-describedby"] = " ".join(filter(None, [helptext, f"{self[name].auto_id}_error"]))


class MatchForm(LinkedErrors, forms.Form):
    old = forms.ChoiceField(label="Old integration (moving from)",
                            error_messages={"invalid_choice": "That integration is not in the mirror (it may have "
                                                              "been removed since); choose one from the list.",
                                            "required": "Choose the integration the documentation comes from."})
    new = forms.ChoiceField(label="New integration (moving to)",
                            error_messages={"invalid_choice": "That integration is not in the mirror (it may have "
                                                              "been removed since); choose one from the list.",
                                            "required": "Choose the integration the documentation goes to."})
    renames = forms.CharField(
        label="Renamed databases and schemas", required=False, max_length=10_000, strip=False,
        help_text="One a line, old => new: a database (legacy_db => warehouse) or a schema with its database "
                  "(analytics.staging => analytics.stg). Case does not matter; put a name holding a dot in double "
                  "quotes. Leave it empty when the paths are the same.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}))

    def __init__(self, *args, integrations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.integrations = {integration.pk: integration for integration in integrations}
        choices = [("", "Choose an integration")] + [
            (integration.pk, f"{integration.name or integration.pk} ({integration.type or 'unknown type'})")
            for integration in integrations]
        self.fields["old"].choices = self.fields["new"].choices = choices

    def clean_renames(self):
        try:
            return parse_mapping(self.cleaned_data.get("renames"))
        except MappingError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        if data.get("old") and data.get("old") == data.get("new"):
            self.add_error("new", "Choose two different integrations: the old and the new one are the same.")
        return data

    @property
    def old_integration(self):
        return self.integrations[self.cleaned_data["old"]]

    @property
    def new_integration(self):
        return self.integrations[self.cleaned_data["new"]]

    def query(self):
        return match_query(self.cleaned_data["old"], self.cleaned_data["new"], self.cleaned_data["renames"])


def match_query(old_id, new_id, renames):
    """The matching page's query string for these choices (renames written the canonical way)."""
    query = QueryDict(mutable=True)
    query.update({"old": old_id, "new": new_id})
    if renames:
        query["renames"] = format_mapping(renames)
    return query.urlencode()


class CopyForm(LinkedErrors, forms.Form):
    OVERWRITE_CHOICES = [("blank", "Only where the new resource has nothing (fill the blanks)"),
                         ("overwrite", "Replace what the new resource has")]

    fields_to_copy = forms.MultipleChoiceField(
        label="What to copy", choices=[(field, COPY_LABELS[field][:1].upper() + COPY_LABELS[field][1:])
                                       for field in COPYABLE],
        widget=forms.CheckboxSelectMultiple, error_messages={"required": "Choose at least one thing to copy."})
    mode = forms.ChoiceField(
        label="Where the new resource has a value already", choices=OVERWRITE_CHOICES, widget=forms.RadioSelect,
        initial="blank", error_messages={"required": "Choose whether to fill the blanks or replace.",
                                         "invalid_choice": "Choose whether to fill the blanks or replace."},
        help_text="A value the old resource does not have (blank text, an empty list, a flag that is off) is "
                  "never copied, so the copy erases nothing.")

    @property
    def overwrite(self):
        return self.cleaned_data["mode"] == "overwrite"


def picks_from(data):
    """{old id: new id or ""} from the `pick-<old id>` fields of a POST (at most MAX_PICKS; checked by
    matching.resolve against the matching itself)."""
    picks = {}
    for key in data:
        if key.startswith(PICK_PREFIX) and len(picks) < MAX_PICKS:
            picks[key[len(PICK_PREFIX):]] = data.get(key, "")
    return picks

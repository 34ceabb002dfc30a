from datetime import datetime, time, timedelta

from django import forms
from django.http import QueryDict
from django.utils import timezone

from hygiene.dashboard.filtersets import HISTORY_FILTERS, ResourceFilterSet
from hygiene.rulebook import registry

MAX_SNOOZE_DAYS = 366


class SnoozeForm(forms.Form):
    rule = forms.ChoiceField(choices=lambda: [("", "Every rule"), *((r.key, r.label) for r in registry.rules())],
                             required=False,
                             label="Which issue")
    until = forms.DateField(label="Snooze until", widget=forms.DateInput(attrs={"type": "date"}),
                            help_text="The issue comes back on this date.")
    reason = forms.CharField(label="Why", max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2, "placeholder": "e.g. scratch schema, "
                                                          "dropped next quarter"}))
    resource = forms.CharField(required=False, widget=forms.HiddenInput)
    filter_query = forms.CharField(required=False, widget=forms.HiddenInput)
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_until(self):
        until = self.cleaned_data["until"]
        today = timezone.localdate()
        if until <= today:
            raise forms.ValidationError("Pick a date after today.")
        if until > today + timedelta(days=MAX_SNOOZE_DAYS):
            raise forms.ValidationError("Snoozes last at most a year; pick an earlier date.")
        return until

    def clean_filter_query(self):
        query = self.cleaned_data["filter_query"]
        used = [name for name in HISTORY_FILTERS if QueryDict(query).get(name)]
        if used:
            label = ResourceFilterSet.base_filters[used[0]].label
            raise forms.ValidationError(
                f"A snooze cannot follow the filter “{label}”: snoozing closes those issues, so they would stop "
                f"matching and come straight back. Snooze by the other filters, or one resource at a time.")
        return query

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if len(reason) < 3:
            raise forms.ValidationError("Say in a few words why this is accepted.")
        return reason

    def clean(self):
        data = super().clean()
        if bool(data.get("resource")) == bool(data.get("filter_query")):
            raise forms.ValidationError("Snooze either one resource or one filter.")
        return data

    def expires_at(self):
        return timezone.make_aware(datetime.combine(self.cleaned_data["until"], time.min))


class SavedViewForm(forms.Form):
    """Save the list being looked at (its rule and filter) under a name. The filter is checked again on
    the server (hygiene.dashboard.saved_views): these hidden fields come back from the browser."""

    name = forms.CharField(label="Name", max_length=100, error_messages={"required": "Give the view a name."},
                           widget=forms.TextInput(attrs={"placeholder": "e.g. Unowned Snowflake tables",
                                                         "autocomplete": "off"}))
    shared = forms.BooleanField(label="Share with everyone", required=False, initial=True,
                                help_text="Everyone sees shared views; only stewards change them.")
    rule = forms.CharField(required=False, widget=forms.HiddenInput)
    filter_query = forms.CharField(required=False, widget=forms.HiddenInput)
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, steward=False, **kwargs):
        kwargs.setdefault("auto_id", "save-view-%s")  # unique ids next to the snooze form on the list page
        super().__init__(*args, **kwargs)
        if not steward:  # viewers keep personal views only
            del self.fields["shared"]
        else:
            self.fields["shared"].widget.attrs["aria-describedby"] = "save-view-shared-help"


class SavedViewRenameForm(forms.Form):
    name = forms.CharField(label="New name", max_length=100, error_messages={"required": "Give the view a name."})

    def __init__(self, *args, view=None, **kwargs):
        kwargs.setdefault("auto_id", f"rename-{view.pk}-%s" if view is not None else "rename-%s")
        super().__init__(*args, **kwargs)
        if view is not None:
            self.fields["name"].initial = view.name

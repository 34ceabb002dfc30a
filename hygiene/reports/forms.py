import functools
from zoneinfo import available_timezones

from django import forms
from django.utils import timezone

from catalog_sync.models import Integration, Team
from hygiene.accounts.services import linked_person
from hygiene.dashboard.saved_views import visible_views
from hygiene.dashboard.templatetags.hygiene_format import person
from hygiene.reports.models import Subscription
from hygiene.reports.schedule import next_due_for

COMMON_ZONES = ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago",
                "America/Denver", "America/Los_Angeles", "America/Toronto", "America/Sao_Paulo", "Asia/Kolkata",
                "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney"]


@functools.cache
def zone_choices():
    others = sorted(z for z in available_timezones() if "/" in z and z not in COMMON_ZONES)
    # Grouped: the common zones first, then every zone by region, so nobody scrolls past 400 to find theirs.
    return [("Common", [(z, z.replace("_", " ")) for z in COMMON_ZONES]),
            ("Every zone", [(z, z.replace("_", " ")) for z in others])]


class SubscriptionForm(forms.ModelForm):
    team = forms.ModelChoiceField(queryset=Team.objects.present(), required=False, empty_label="Choose a team")
    integration = forms.ModelChoiceField(queryset=Integration.objects.present(), required=False,
                                         empty_label="Choose an integration")
    hour = forms.TypedChoiceField(choices=[(h, f"{h:02d}:00") for h in range(24)], coerce=int, initial=8,
                                  label="At")
    time_zone = forms.ChoiceField(choices=zone_choices, initial="UTC", label="Time zone")

    class Meta:
        model = Subscription
        fields = ["scope", "team", "integration", "saved_view", "frequency", "weekday", "hour", "time_zone", "email"]
        labels = {"scope": "What it covers", "saved_view": "Saved view", "frequency": "How often", "weekday": "On",
                  "email": "Send to"}

    def __init__(self, *args, user=None, steward=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.steward = user, steward
        self.fields["email"].initial = user.email if user else ""
        # The views this person can open: shared ones and their own (stewards: every one).
        views = self.fields["saved_view"]
        views.queryset = visible_views(user) if user else views.queryset.none()
        views.empty_label = "Choose a saved view"

        def view_label(view):  # names repeat across people's personal views: say whose
            if view.shared:
                return view.name
            return f"{view.name} (personal)" if view.owner_id == user.pk else f"{view.name} ({person(view.owner)}'s)"

        views.label_from_instance = view_label
        views.help_text = "Counts exactly that view's list: its rule and filters."
        if not steward:
            # Only stewards send reports to other addresses (a team's mailing list).
            self.fields["email"].disabled = True
            self.fields["email"].help_text = "Your address. Stewards can subscribe a team's mailing list."
        else:
            self.fields["email"].help_text = "Yours, or a team's mailing list."

    def clean(self):
        data = super().clean()
        scope = data.get("scope")
        if scope == Subscription.TEAM and not data.get("team"):
            self.add_error("team", "Choose the team this report covers.")
        if scope == Subscription.INTEGRATION and not data.get("integration"):
            self.add_error("integration", "Choose the integration this report covers.")
        if scope == Subscription.VIEW and not data.get("saved_view"):
            self.add_error("saved_view", "Choose the saved view this report covers.")
        if scope == Subscription.MINE and self.user is not None and not linked_person(self.user):
            self.add_error("scope", "You are not linked to a Secoda person yet, so the dashboard does not know "
                                    "which assets are yours. Link yourself on your account page first.")
        if not self.steward:
            data["email"] = self.user.email
        if not data.get("email"):
            self.add_error("email", "Your account has no e-mail address; ask an admin to add one.")
        return data

    def save(self, commit=True):
        subscription = super().save(commit=False)
        data = self.cleaned_data
        subscription.user = subscription.user if subscription.user_id else self.user
        subscription.scope_id = {Subscription.TEAM: getattr(data.get("team"), "pk", ""),
                                 Subscription.INTEGRATION: getattr(data.get("integration"), "pk", "")}.get(
            subscription.scope, "")
        if subscription.scope != Subscription.VIEW:
            subscription.saved_view = None
        subscription.next_due_at = next_due_for(subscription, timezone.now())
        if commit:
            subscription.save()
        return subscription

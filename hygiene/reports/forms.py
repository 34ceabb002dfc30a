from zoneinfo import available_timezones

from django import forms
from django.utils import timezone

from catalog_sync.models import Integration, Team
from hygiene.reports.models import Subscription
from hygiene.reports.schedule import next_due_for

COMMON_ZONES = ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago",
                "America/Denver", "America/Los_Angeles", "America/Toronto", "America/Sao_Paulo", "Asia/Kolkata",
                "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney"]


def zone_choices():
    others = sorted(z for z in available_timezones() if "/" in z and z not in COMMON_ZONES)
    return [(z, z.replace("_", " ")) for z in COMMON_ZONES + others]


class SubscriptionForm(forms.ModelForm):
    team = forms.ModelChoiceField(queryset=Team.objects.present(), required=False, empty_label="Choose a team")
    integration = forms.ModelChoiceField(queryset=Integration.objects.present(), required=False,
                                         empty_label="Choose an integration")
    hour = forms.TypedChoiceField(choices=[(h, f"{h:02d}:00") for h in range(24)], coerce=int, initial=8,
                                  label="At")
    time_zone = forms.ChoiceField(choices=zone_choices, initial="UTC", label="Time zone")

    class Meta:
        model = Subscription
        fields = ["scope", "team", "integration", "frequency", "weekday", "hour", "time_zone", "email"]
        labels = {"scope": "What it covers", "frequency": "How often", "weekday": "On", "email": "Send to"}

    def __init__(self, *args, user=None, steward=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.steward = user, steward
        self.fields["email"].initial = user.email if user else ""
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
        subscription.next_due_at = next_due_for(subscription, timezone.now())
        if commit:
            subscription.save()
        return subscription

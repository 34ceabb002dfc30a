from django import forms

from catalog_sync.models import SecodaUser
from hygiene.accounts.models import PersonLink


class PersonSearchForm(forms.Form):
    q = forms.CharField(label="Find your Secoda person", max_length=200, required=False,
                        help_text="A name or an e-mail address.")


class LinkForm(forms.Form):
    person = forms.CharField(max_length=64)

    def clean_person(self):
        person = SecodaUser.objects.present().filter(pk=self.cleaned_data["person"]).first()
        if person is None:
            raise forms.ValidationError("That Secoda person is not in the workspace (any more). Search again.")
        return person


class PersonLinkAdminForm(forms.ModelForm):
    """The admin's by-hand link: the id must be a person in the mirror."""

    class Meta:
        model = PersonLink
        fields = ["secoda_user_id"]

    def clean_secoda_user_id(self):
        value = self.cleaned_data["secoda_user_id"].strip()
        if not SecodaUser.objects.present().filter(pk=value).exists():
            matches = list(SecodaUser.objects.present().filter(email__iexact=value)[:2])
            if len(matches) != 1:
                raise forms.ValidationError("No Secoda person with that id or e-mail is in the mirror.")
            value = matches[0].pk
        return value


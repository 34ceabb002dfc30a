"""The form renderer draws the standard widgets in Python: every page with a form must come out byte for byte
as Django's own widget templates draw it, bad input and chosen filters included."""
import difflib
import re
from datetime import date

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils import timezone
from django.utils.safestring import mark_safe
from freezegun import freeze_time

from catalog_sync.models import Integration, Resource, SecodaUser, Team
from hygiene import forms_renderer
from hygiene.forms_renderer import WidgetRenderer

DJANGO = "django.forms.renderers.DjangoTemplates"
OURS = "hygiene.forms_renderer.WidgetRenderer"
CSRF = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]+"|(csrf[-_]token["\']?[:=] ?["\'])[^"\']+')


def same_page(html):
    """The page without its CSRF token, which is masked afresh on every response."""
    return CSRF.sub(r"\1\2", html)


class Everything(forms.Form):
    """Each standard widget with the values that test a template's corners."""
    CHOICES = [("", "Any"), ("a&b", "A & B"), (3, 1234567), ("Grouped", [("x", "<x>"), ("y", mark_safe("<b>y</b>"))])]
    text = forms.CharField(initial='say "hi" <script>', widget=forms.TextInput(attrs={"placeholder": "a \"b\" <c>",
                                                                                       "autofocus": True,
                                                                                       "disabled": False}))
    safe = forms.CharField(initial=mark_safe("<em>kept</em>"))
    empty = forms.CharField(required=False)
    number = forms.IntegerField(initial=1234567, min_value=0)
    day = forms.DateField(initial=date(2026, 11, 29), widget=forms.DateInput(attrs={"type": "date"}))
    hidden = forms.CharField(initial="h", widget=forms.HiddenInput)
    flag = forms.BooleanField(initial=True, required=False)
    unset = forms.BooleanField(required=False)
    pick = forms.ChoiceField(choices=CHOICES, initial="x", required=False)
    picks = forms.MultipleChoiceField(choices=CHOICES, initial=["a&b", 3], required=False,
                                      widget=forms.CheckboxSelectMultiple(attrs={"class": "check-list"}))
    several = forms.MultipleChoiceField(choices=CHOICES, initial=["y"], required=False)
    one = forms.ChoiceField(choices=CHOICES[:3], initial=3, widget=forms.RadioSelect)
    note = forms.CharField(initial="line 1\n<line 2> & 3", widget=forms.Textarea(attrs={"rows": 3}))
    blank_note = forms.CharField(required=False, widget=forms.Textarea)
    mail = forms.EmailField(initial="a@example.com")
    url = forms.URLField(initial="https://example.com/?a=1&b=2", assume_scheme="https")


@pytest.mark.parametrize("data", [None, {"text": "", "number": "x", "picks": ["nope"], "one": "9", "day": "2026-13-45",
                                         "pick": "<bad>", "note": "", "mail": "not an address", "url": "javascript:x"}],
                         ids=["unbound", "bound with errors"])
def test_every_standard_widget_is_drawn_as_djangos_templates_draw_it(data):
    theirs = Everything(data, renderer=DjangoTemplates())
    ours = Everything(data, renderer=WidgetRenderer())
    if data:
        assert not ours.is_valid() and not theirs.is_valid()
    for field in theirs:
        assert str(ours[field.name]) == str(field), field.name
    assert str(ours) == str(theirs)


def test_a_widget_or_option_template_it_does_not_know_is_drawn_by_its_template():
    class Odd(forms.Select):
        option_template_name = "django/forms/widgets/radio_option.html"

    class Custom(forms.Form):
        odd = forms.ChoiceField(choices=[("a", "A")], widget=Odd)
        split = forms.SplitDateTimeField()

    assert str(Custom(renderer=WidgetRenderer())) == str(Custom(renderer=DjangoTemplates()))


@pytest.fixture
def pages(synced_mirror, steward):
    resource = Resource.objects.filter(removed_at__isnull=True).order_by("id").first()
    owner = SecodaUser.objects.order_by("id").first()
    team = Team.objects.order_by("id").first()
    integration = Integration.objects.order_by("id").first()
    return [
        "/", "/issues/", "/issues/unowned/",
        f"/issues/stale/?owner={owner.pk}&team={team.pk}&integration={integration.pk}&entity_type=table&pii=true"
        f"&updated_after=2020-01-01&q=orders&sort=-title_full&columns=title_full&columns=owners",
        "/issues/undocumented/?usage_min=x&updated_before=2026-13-45&per_page=-1",
        f"/resources/{resource.pk}/", "/owners/", "/teams/", "/snoozes/", "/views/", "/changes/",
        f"/changes/edit-resource/?resource={resource.pk}", "/migrate/", "/reports/",
        "/account/", "/rules/", "/rules/new", "/suggestions/unowned/", "/suggestions/undocumented/?q=x",
    ]


def test_every_page_with_a_form_is_the_same_with_either_renderer(client, settings, steward, pages, monkeypatch):
    drawn = []
    for name, write in list(forms_renderer.TEMPLATES.items()):
        monkeypatch.setitem(forms_renderer.TEMPLATES, name,
                            lambda widget, write=write, name=name: drawn.append(name) or write(widget))
    client.force_login(steward)
    now = timezone.now()
    resource = Resource.objects.filter(removed_at__isnull=True).order_by("id").first()
    posts = [("/changes/edit/", {"pk": [resource.pk], "rule": "unowned"}),
             ("/changes/edit/", {"pk": [resource.pk], "step": "preview", "edit": "?", "owners": "nobody"}),
             (f"/changes/edit-resource/?resource={resource.pk}", {"resource": resource.pk, "description": "",
                                                                   "pii": "maybe"}),
             ("/snoozes/new", {"reason": "", "days": "x"}), ("/rules/new", {"name": "", "entity_type": "?"}),
             ("/migrate/", {"source": "", "target": ""}), ("/reports/", {"email": "no", "frequency": "?"})]
    # Every page is drawn at one instant: "a second ago", "seen just now" and "at least 2 minutes" follow the
    # clock, and the mirror may have been synced minutes before (one frozen clock: starting one costs freezegun a
    # look through every loaded module).
    with freeze_time(now):
        for path, data in [*[(path, None) for path in pages], *posts]:
            rendered = {}
            for renderer in (DJANGO, OURS):
                settings.FORM_RENDERER = renderer
                response = client.post(path, data, follow=True) if data is not None else client.get(path)
                assert response.status_code < 500, path
                rendered[renderer] = same_page(response.content.decode()) if response.status_code == 200 else ""
            assert rendered[OURS] == rendered[DJANGO], path + "\n" + "\n".join(difflib.unified_diff(
                rendered[DJANGO].splitlines(), rendered[OURS].splitlines(), "Django's templates", "ours",
                lineterm=""))
    # The pages drew selects, checkboxes, text, number, date and hidden inputs and text areas the fast way.
    assert {f"django/forms/widgets/{name}.html" for name in ("select", "checkbox_select", "text", "number", "date",
                                                             "textarea")} <= set(drawn)

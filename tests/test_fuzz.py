"""Every list page and every form, sent malformed, huge, NUL and unicode values: never a 500, and a request
that is refused saves nothing."""
import itertools

import pytest
from django.urls import reverse

from catalog_sync.models import Resource
from hygiene.bulk.models import ChangeSet
from hygiene.dashboard.models import Snooze
from hygiene.reports.models import Subscription
from hygiene.rulebook.models import Rule

# Sweeps of some 1,200 requests through the whole stack: end to end, marked slow, so the quick loop skips them
# (the pages and forms they sweep have their own quick tests).
pytestmark = [pytest.mark.django_db, pytest.mark.slow]

VALUES = ["", "x" * 20_000, "a\x00b", "☃ ünïcödé 💥 \u202e", "-1", "1e309", "99999999999999999999999",
          "' OR 1=1 --", '{"a":', "<script>alert(1)</script>", "2026-13-45", "None"]
FEW = ["x" * 20_000, "☃ 💥 \u202e", "-1", "a\x00b"]
LIST_PARAMS = ["q", "integration", "entity_type", "native_type", "team", "owner", "tag", "usage_min", "usage_max",
               "pii", "verified", "published", "updated_after", "updated_before", "sort", "page", "per_page",
               "snoozed", "columns", "status"]


@pytest.fixture
def steward_client(client, steward, synced_mirror, monkeypatch):
    # Templates render as in production: the test environment's render sends a signal on which the client
    # copies every context (each widget's and option's too), a tenth of these tests' time; only status codes
    # and saved rows are read here.
    from django.template import Template
    from django.test.utils import _TestState

    monkeypatch.setattr(Template, "_render", _TestState.saved_data.template_render)
    client.force_login(steward)
    client.raise_request_exception = False  # a 500 comes back as a response, to be counted
    return client


def saved():
    return (Snooze.objects.count(), ChangeSet.objects.count(), Subscription.objects.count(), Rule.objects.count())


@pytest.mark.parametrize("name", LIST_PARAMS)  # one test per filter, so parallel workers share them
def test_the_issue_list_answers_every_malformed_value_of_a_filter_without_a_500(steward_client, name):
    failures = []
    for value in VALUES:
        response = steward_client.get("/issues/unowned/", {name: value})
        if response.status_code >= 500:
            failures.append((name, value[:20], response.status_code))
    assert not failures, failures[:10]


def test_other_pages_answer_every_malformed_query_without_a_500(steward_client):
    change_set = ChangeSet.objects.create(summary="fuzz", status=ChangeSet.COMPLETED)
    other_pages = ["/", "/issues/export.csv", "/owners/", "/teams/", "/snoozes/", "/changes/",
                   f"/changes/{change_set.pk}/", "/reports/", "/rules/", "/rules/new",
                   f"/rules/{Rule.objects.get(key='unowned').pk}/edit"]
    failures = []
    for path, name, value in itertools.product(other_pages, ["q", "sort", "page", "per_page", "status", "owner",
                                                             "scope"], FEW):
        response = steward_client.get(path, {name: value})
        if response.status_code >= 500:
            failures.append((path, name, value[:20], response.status_code))
    assert not failures, failures[:10]
    for path in ("/resources/%E2%98%83/", "/resources/" + "x" * 5000 + "/", "/issues/%3Cscript%3E/",
                 "/changes/99999999999999999999/", "/reports/unsubscribe/%00/", "/rules/99999999999999999999/edit",
                 "/rules/export.xml"):
        assert steward_client.get(path).status_code in (400, 404), path


FORMS = {
    "snooze": (lambda: reverse("dashboard:snooze-create"),
               ["rule", "until", "reason", "resource", "filter_query", "next"],
               {"rule": "unowned", "until": "2099-01-01", "reason": "fuzz", "next": "/"}),
    "bulk edit": (lambda: reverse("bulk:edit"),
                  ["select_all", "filter_query", "rule", "snoozed", "pk", "step", "owners_mode", "owners", "tags_mode",
                   "tags", "teams_mode", "teams", "description_mode", "description", "verified", "pii", "published"],
                  {"select_all": "0", "rule": "unowned", "step": "preview", "pii": "true"}),
    "subscribe": (lambda: reverse("reports:list"),
                  ["scope", "team", "integration", "frequency", "weekday", "hour", "time_zone", "email"],
                  {"scope": "workspace", "frequency": "daily", "hour": "8", "time_zone": "UTC",
                   "email": "a@example.com"}),
    "rule builder": (lambda: reverse("rulebook:create"),
                     ["name", "explanation", "weight", "enabled", "match", "rows", "action", "clause-0-field",
                      "clause-0-op", "clause-0-value", "clause-1-field", "clause-1-value", "entity_type", "team",
                      "tag", "integration", "owner", "usage_min", "updated_after"],
                     {"name": "fuzz rule", "weight": "10", "enabled": "on", "match": "all", "rows": "6",
                      "action": "save", "clause-0-field": "pii", "clause-0-op": "is_true", "clause-1-field": "title",
                      "clause-1-op": "matches", "clause-1-value": "^a", "entity_type": "column"}),
    "built-in rule": (lambda: reverse("rulebook:edit", args=[Rule.objects.get(key="stale").pk]),
                      ["weight", "enabled", "action", "name", "clause-0-field"],
                      {"weight": "20", "enabled": "on", "action": "save"}),
}


FORM_FIELDS = [pytest.param(form, field, id=f"{form}: {field}") for form, (_, fields, _) in FORMS.items()
               for field in fields]


@pytest.mark.parametrize("form, field", FORM_FIELDS)  # one test per field, so parallel workers share them
def test_forms_refuse_every_malformed_value_without_a_500_and_save_nothing_when_they_refuse(steward_client, form,
                                                                                             field):
    url, _, valid = FORMS[form]
    if form == "bulk edit":
        valid = {**valid, "pk": Resource.objects.filter(archived=False).values_list("pk", flat=True)[0]}
    if form == "snooze":
        valid = {**valid, "resource": Resource.objects.values_list("pk", flat=True)[0]}
    failures = []
    before = saved()  # what is saved changes only with the posts: each post's after is the next one's before
    for value in VALUES:
        response = steward_client.post(url(), {**valid, field: value})
        after = saved()
        if response.status_code >= 500:
            failures.append((field, value[:20], response.status_code))
        elif response.status_code >= 400 and after != before:
            failures.append((field, value[:20], "saved although refused"))
        before = after
    assert not failures, failures[:10]


def test_change_set_actions_on_odd_ids_and_states_never_500(steward_client):
    draft = ChangeSet.objects.create(summary="fuzz", status=ChangeSet.DRAFT)
    done = ChangeSet.objects.create(summary="fuzz", status=ChangeSet.COMPLETED)
    for action, pk in itertools.product(("apply", "discard", "retry", "undo"), (draft.pk, done.pk, 987654)):
        response = steward_client.post(reverse(f"bulk:{action}", args=[pk]))
        assert response.status_code < 500, (action, pk)
    for action in ("delete", "send-now", "preview"):
        assert steward_client.post(reverse(f"reports:{action}", args=[987654])).status_code in (404, 405), action
    for action in ("toggle", "delete", "edit"):
        assert steward_client.post(reverse(f"rulebook:{action}", args=[987654])).status_code == 404, action

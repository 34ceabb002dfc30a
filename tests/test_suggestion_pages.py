"""The Suggestions pages over the 600-resource mirror synced from the emulator: the list and its filters,
accepting one or every match at a confidence as a change set (before/after per resource), rejecting for good,
who may do what, bad input, the overview's share and the page's queries."""
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog_sync.models import Integration, Resource
from hygiene.bulk.models import ChangeSet
from hygiene.dashboard.models import Snapshot
from hygiene.domain.lists import issue_queryset
from hygiene.rulebook.models import Rule
from hygiene.suggestions import compute
from hygiene.suggestions.models import RejectedSuggestion, Suggestion
from tests.test_dashboard import as_steward, as_viewer  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

COUNT = re.compile(r'data-count="(\d+)"')
ROW = re.compile(r'<tr data-suggestion="(\d+)">')


@pytest.fixture
def mirror(synced_mirror):
    assert Suggestion.objects.filter(kind=Suggestion.OWNER).count() > 100
    return synced_mirror


def page(client, url, params=None):
    response = client.get(url, params or {})
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def total(html):
    return int(COUNT.search(html).group(1))


def snowflake():
    return Integration.objects.get(type="snowflake")


def open_suggestions(kind=Suggestion.OWNER, **resource_filters):
    """Suggestions of open issues, worked out here from the issue list's queryset (not the page's code)."""
    rule = Suggestion.RULE_OF_KIND[kind]
    resources = issue_queryset(rule).filter(**resource_filters).values("pk")
    return Suggestion.objects.filter(kind=kind, resource__in=resources)


# -- the list ------------------------------------------------------------------------------------

def test_the_list_shows_every_suggestion_of_open_issues_most_confident_first(mirror, as_viewer):
    html = page(as_viewer, "/suggestions/unowned/", {"per_page": 200})
    expected = open_suggestions()
    assert total(html) == expected.count()
    shown = [int(pk) for pk in ROW.findall(html)]
    confidences = dict(Suggestion.objects.filter(pk__in=shown).values_list("pk", "confidence"))
    assert [confidences[pk] for pk in shown] == sorted(confidences.values(), reverse=True)
    top = Suggestion.objects.get(pk=shown[0])
    assert top.reason.split(". ")[0] in html.replace("&#x27;", "'")
    assert "Accept…" not in html and "Reject" not in html, "viewers see, but cannot act"


def test_the_issue_lists_filters_and_a_least_confidence_narrow_the_list(mirror, as_viewer):
    integration = snowflake()
    html = page(as_viewer, "/suggestions/unowned/", {"integration": integration.pk, "min_confidence": 80,
                                                     "entity_type": "column"})
    expected = open_suggestions(integration=integration, entity_type="column").filter(confidence__gte=80)
    assert 0 < total(html) == expected.count() < open_suggestions().count()
    assert "Confidence at least: 80" in html and "Snowflake" in html


def test_the_evidence_filter_keeps_suggestions_with_that_evidence(mirror, as_viewer):
    html = page(as_viewer, "/suggestions/unowned/", {"evidence": "parent"})
    assert total(html) == open_suggestions().filter(evidence__contains="parent").count() > 0


def test_the_list_sorts_by_resource_and_paginates(mirror, as_viewer):
    html = page(as_viewer, "/suggestions/unowned/", {"sort": "resource", "per_page": 25, "page": 2})
    shown = [int(pk) for pk in ROW.findall(html)]
    assert len(shown) == 25
    ordered = list(open_suggestions().order_by("resource__title_full", "id").values_list("pk", flat=True))
    titles = dict(Suggestion.objects.filter(pk__in=ordered).values_list("pk", "resource__title_full"))
    assert [titles[pk].lower() for pk in shown] == sorted(titles[pk].lower() for pk in shown)
    assert "Page 2 of" in html


def test_descriptions_have_their_own_list(mirror, as_viewer):
    html = page(as_viewer, "/suggestions/undocumented/", {"per_page": 200})
    assert total(html) == open_suggestions(Suggestion.DESCRIPTION).count() > 0
    assert "Suggested descriptions" in html


@pytest.mark.parametrize("params, message", [
    ({"min_confidence": "high"}, "Ignored the filter “Confidence at least”"),
    ({"min_confidence": "101"}, "Ignored the filter “Confidence at least”"),
    ({"min_confidence": "-5"}, "Ignored the filter “Confidence at least”"),
    ({"evidence": "gut feeling"}, "Ignored the filter “Evidence”"),
    ({"integration": "nope"}, "Ignored the filter “Integration”"),
    ({"page": "abc"}, "is not a page number"),
    ({"page": "99999"}, "There is no page 99999"),
    ({"per_page": "7"}, "Showing 50 rows a page"),
    ({"sort": "nonsense"}, ""),
])
def test_bad_query_strings_get_a_clear_message_not_an_error(mirror, as_viewer, params, message):
    html = page(as_viewer, "/suggestions/unowned/", params)
    assert message in html
    assert total(html) == open_suggestions().count()


def test_suggestions_exist_only_for_the_unowned_and_undocumented_rules_in_force(mirror, as_viewer):
    assert as_viewer.get("/suggestions/stale/").status_code == 404
    assert as_viewer.get("/suggestions/nonsense/").status_code == 404
    Rule.objects.filter(key="undocumented").update(enabled=False)
    response = as_viewer.get("/suggestions/undocumented/")
    assert response.status_code == 404 and "switched off" in response.content.decode()


def test_the_pages_need_a_sign_in_and_a_role(mirror, client, outsider):
    response = client.get("/suggestions/unowned/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(outsider)
    assert client.get("/suggestions/unowned/").status_code == 403


# -- accepting -------------------------------------------------------------------------------------

def test_accepting_one_suggestion_previews_a_change_set_adding_that_owner(mirror, as_steward, steward):
    suggestion = open_suggestions().filter(value__startswith="user:").order_by("-confidence", "id").first()
    response = as_steward.post(reverse("suggestions:accept", args=[suggestion.pk]))
    change_set = ChangeSet.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("bulk:change-set", args=[change_set.pk])
    assert (change_set.status, change_set.created_by, change_set.rule) == (ChangeSet.DRAFT, steward, "unowned")
    item = change_set.items.get()
    assert item.resource_id == suggestion.resource_id
    assert item.before == {"owners": []}
    assert item.after == {"owners": [suggestion.value.removeprefix("user:")]}
    preview = page(as_steward, response["Location"])
    assert "Accept the suggested owner of" in preview and 'data-will-change="1"' in preview


def test_accepting_a_suggested_description_sets_it(mirror, as_steward):
    suggestion = open_suggestions(Suggestion.DESCRIPTION).first()
    as_steward.post(reverse("suggestions:accept", args=[suggestion.pk]))
    item = ChangeSet.objects.get().items.get()
    assert item.before == {"description": Resource.objects.get(pk=suggestion.resource_id).description}
    assert item.after == {"description": suggestion.value}


def test_accepting_every_match_at_a_confidence_builds_one_change_set_with_each_resources_owners(
        mirror, as_steward):
    integration = snowflake()
    query = f"integration={integration.pk}&entity_type=column&min_confidence=60"
    response = as_steward.post(reverse("suggestions:accept-matching", args=["unowned"]),
                               {"filter_query": query, "min_confidence": 85})
    change_set = ChangeSet.objects.get()
    assert response["Location"] == reverse("bulk:change-set", args=[change_set.pk])
    # Worked out here: every open unowned Snowflake column's suggested owners of confidence 85 or more.
    expected = {}
    for resource_id, value in open_suggestions(integration=integration, entity_type="column").filter(
            confidence__gte=85).values_list("resource_id", "value"):
        expected.setdefault(resource_id, set()).add(value)
    assert len(expected) > 5
    items = {item.resource_id: item for item in change_set.items.all()}
    assert set(items) == set(expected)
    for resource_id, values in expected.items():
        item = items[resource_id]
        assert set(item.after.get("owners", [])) == {v.removeprefix("user:") for v in values if v.startswith("user:")}
        assert set(item.after.get("owners_groups", [])) == {v.removeprefix("group:") for v in values
                                                             if v.startswith("group:")}
        assert all(value == [] for value in item.before.values()), "they had no owner"
    assert change_set.summary.startswith(f"Accept {sum(len(v) for v in expected.values()):,} suggested owners")
    assert "confidence ≥ 85" in change_set.filter_label and "Snowflake" in change_set.filter_label
    assert change_set.edit["accepted_suggestions"]["min_confidence"] == 85


def test_accepting_descriptions_in_bulk_takes_the_most_confident_for_each_resource(mirror, as_steward):
    resource = Resource.objects.filter(is_documented=False, entity_type="column").first()
    Suggestion.objects.create(resource=resource, kind=Suggestion.DESCRIPTION, value="Weaker.", value_key="a" * 32,
                              reason="test", evidence="propagation", confidence=61)
    Suggestion.objects.create(resource=resource, kind=Suggestion.DESCRIPTION, value="Stronger.", value_key="b" * 32,
                              reason="test", evidence="counterpart", confidence=88)
    as_steward.post(reverse("suggestions:accept-matching", args=["undocumented"]),
                    {"filter_query": f"q={resource.title_full}", "min_confidence": 60})
    item = ChangeSet.objects.get().items.get(resource=resource)
    assert item.after == {"description": "Stronger."}


@pytest.mark.parametrize("data, message", [
    ({"filter_query": "", "min_confidence": ""}, "Say the least confidence to accept"),
    ({"filter_query": "", "min_confidence": "lots"}, "Enter a whole number"),
    ({"filter_query": "", "min_confidence": "150"}, "less than or equal to 100"),
    ({"filter_query": "integration=gone", "min_confidence": "50"}, "this filter is no longer valid"),
    ({"filter_query": "evidence=hunch", "min_confidence": "50"}, "this filter is no longer valid"),
    ({"filter_query": "q=no-such-resource-anywhere", "min_confidence": "50"}, "Nothing to accept"),
])
def test_a_bad_accept_is_refused_with_a_message_and_builds_nothing(mirror, as_steward, data, message):
    response = as_steward.post(reverse("suggestions:accept-matching", args=["unowned"]), data, follow=True)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ChangeSet.objects.exists()


def test_a_suggestion_whose_resource_was_fixed_since_is_not_accepted(mirror, as_steward):
    suggestion = open_suggestions().first()
    Resource.objects.filter(pk=suggestion.resource_id).update(owners=["someone"], is_owned=True)
    response = as_steward.post(reverse("suggestions:accept", args=[suggestion.pk]), follow=True)
    assert "fixed since the suggestion was made" in response.content.decode()
    assert not ChangeSet.objects.exists()


# -- rejecting --------------------------------------------------------------------------------------

def test_a_rejected_suggestion_is_gone_and_stays_gone(mirror, as_steward):
    suggestion = open_suggestions().first()
    back = "/suggestions/unowned/?min_confidence=10"
    response = as_steward.post(reverse("suggestions:reject", args=[suggestion.pk]), {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    assert not Suggestion.objects.filter(pk=suggestion.pk).exists()
    compute.recompute()
    assert not Suggestion.objects.filter(resource_id=suggestion.resource_id, value=suggestion.value).exists()
    assert RejectedSuggestion.objects.filter(resource_id=suggestion.resource_id, value=suggestion.value).exists()
    assert f'data-suggestion="{suggestion.pk}"' not in page(as_steward, "/suggestions/unowned/", {"per_page": 200})


def test_a_reject_never_sends_the_steward_off_site(mirror, as_steward):
    suggestion = open_suggestions().first()
    response = as_steward.post(reverse("suggestions:reject", args=[suggestion.pk]), {"next": "https://evil.test/"})
    assert response["Location"] == "/suggestions/unowned/"


# -- permissions ------------------------------------------------------------------------------------

def test_viewers_cannot_accept_or_reject(mirror, as_viewer):
    suggestion = open_suggestions().first()
    for url, data in ((reverse("suggestions:accept", args=[suggestion.pk]), {}),
                      (reverse("suggestions:reject", args=[suggestion.pk]), {}),
                      (reverse("suggestions:accept-matching", args=["unowned"]), {"min_confidence": 0})):
        assert as_viewer.post(url, data).status_code == 403
    assert not ChangeSet.objects.exists() and not RejectedSuggestion.objects.exists()
    assert Suggestion.objects.filter(pk=suggestion.pk).exists()


def test_acting_needs_a_post_with_a_csrf_token(mirror, steward):
    suggestion = open_suggestions().first()
    client = Client(enforce_csrf_checks=True)
    client.force_login(steward)
    assert client.post(reverse("suggestions:reject", args=[suggestion.pk])).status_code == 403
    assert client.get(reverse("suggestions:reject", args=[suggestion.pk])).status_code == 405
    assert client.post(reverse("suggestions:accept-matching", args=["unowned"]),
                       {"min_confidence": 0}).status_code == 403
    assert Suggestion.objects.filter(pk=suggestion.pk).exists() and not ChangeSet.objects.exists()


def test_stewards_see_the_actions(mirror, as_steward):
    html = page(as_steward, "/suggestions/unowned/")
    assert "Accept…" in html and "Reject" in html and 'data-testid="accept-matching"' in html


# -- the overview and the lists ------------------------------------------------------------------------

def test_the_overview_says_how_many_issues_have_a_suggestion_and_links_to_them(mirror, as_viewer):
    html = page(as_viewer, "/")
    snapshot = Snapshot.objects.first()
    owners = open_suggestions().values("resource_id").distinct().count()
    descriptions = open_suggestions(Suggestion.DESCRIPTION).values("resource_id").distinct().count()
    assert snapshot.totals["suggested_unowned"] == owners
    assert (f'<a href="/suggestions/unowned/" data-suggested="unowned">{owners:,} of '
            f'{snapshot.totals["unowned"]:,} unowned have a suggested owner</a>') in html
    assert (f'data-suggested="undocumented">{descriptions:,} of {snapshot.totals["undocumented"]:,} '
            f'undocumented have a suggested description</a>') in html


def test_the_unowned_list_links_to_its_suggestions_with_its_filters(mirror, as_viewer):
    integration = snowflake()
    html = page(as_viewer, "/issues/unowned/", {"integration": integration.pk})
    assert f'href="/suggestions/unowned/?integration={integration.pk}"' in html
    assert 'data-testid="suggestions-link"' not in page(as_viewer, "/issues/stale/")


def test_the_list_runs_the_same_queries_for_25_and_200_rows(mirror, as_steward):
    counts = []
    for per_page in (25, 200):
        with CaptureQueriesContext(connection) as captured:
            response = as_steward.get("/suggestions/unowned/", {"per_page": per_page})
        assert response.status_code == 200
        assert len(ROW.findall(response.content.decode())) == min(per_page, open_suggestions().count())
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1] <= 21, counts  # a page is read in two steps: its ids, then its rows

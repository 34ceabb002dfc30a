from django.contrib import messages
from django.db.models import Count
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from hygiene.accounts import services
from catalog_sync.models import ResourceRef
from hygiene.accounts.forms import LinkForm, PersonSearchForm
from hygiene.dashboard.filtersets import ref_q
from hygiene.domain.issues import any_of, open_issue_filters
from hygiene.roles import is_steward
from hygiene.rules import in_scope


def owned_summary(person):
    """How many assets the person owns and how many of them have open issues; the same for each of their
    groups. Each count is what its link lists."""
    issues = any_of(open_issue_filters())
    link = reverse("dashboard:issues")
    owned = in_scope().filter(services.owned_by(person))
    counts = owned.aggregate(total=Count("pk"), with_issues=Count("pk", filter=issues))
    groups = []
    for group in services.groups_of(person):
        held = in_scope().filter(ref_q(ResourceRef.OWNER_GROUP, group.pk)).aggregate(
            total=Count("pk"), with_issues=Count("pk", filter=issues))
        groups.append({"name": group.name, **held, "link": f"{link}?{urlencode({'owner': f'group:{group.pk}'})}"})
    return {**counts, "issues_link": f"{link}?{urlencode({'owner': f'user:{person.pk}'})}", "groups": groups}


def account(request):
    link = services.linked_person(request.user)
    search = PersonSearchForm(request.GET or None)
    found = services.find_people(search.cleaned_data["q"]) if search.is_valid() else []
    return render(request, "accounts/account.html", {
        "link": link, "owned": owned_summary(link.person) if link else None, "search": search,
        "found": found, "searched": search.is_bound and search.is_valid() and search.cleaned_data["q"],
        "steward": is_steward(request.user), "by_hand": services.BY_HAND,
    })


@require_POST
def link_person(request):
    form = LinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["person"]))
        return redirect("accounts:account")
    person = form.cleaned_data["person"]
    services.link(request.user, person, by=request.user)
    messages.success(request, f"You are now linked to {person.display_name} in Secoda: \"Assets I own\" "
                              f"and your reports follow what they own.")
    return redirect("accounts:account")


@require_POST
def unlink_person(request):
    services.unlink(request.user)
    messages.success(request, "Your link by hand is gone: you are matched by e-mail again.")
    return redirect("accounts:account")

"""Saved views: a named issue list (rule + filter). Who sees and changes which view, and the changes
themselves, for the pages and the reports alike.

Shared views are listed for everyone and only stewards save, rename or delete them. Anyone who reads the
dashboard may keep personal views; a person's own personal views are theirs to rename and delete, and
stewards see and tidy every view (as they see every report subscription)."""
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.http import QueryDict
from django.utils import timezone

from hygiene.dashboard.filtersets import ResourceFilterSet, applied_query, filterset_from_query
from hygiene.dashboard.models import SavedView
from hygiene.roles import is_steward
from hygiene.rulebook import registry

MAX_QUERY_LENGTH = 4000


class SavedViewError(ValueError):
    """Why a view was not saved, renamed or deleted, in words for the person who asked."""


def visible_views(user):
    """The views a person may open from the Saved views page and subscribe to."""
    views = SavedView.objects.select_related("owner")
    if is_steward(user):
        return views
    return views.filter(Q(shared=True) | Q(owner=user))


def can_change(user, view):
    """Stewards change every view; anyone else only their own personal ones."""
    return is_steward(user) or (view.owner_id == user.pk and not view.shared)


def checked_filter(rule, query):
    """(the normalised query string, the filter in words) of a rule and a query string from a form;
    SavedViewError saying what is wrong when anything is (a tampered form, a value the list would drop)."""
    if rule and rule not in registry.keys():
        raise SavedViewError(f"“{rule[:40]}” is not a rule.")
    if len(query) > MAX_QUERY_LENGTH:
        raise SavedViewError("That filter is too long to save.")
    data = QueryDict(query)
    known = set(ResourceFilterSet.base_filters)
    unknown = sorted(name for name in data if name not in known)
    if unknown:
        raise SavedViewError(f"“{unknown[0][:40]}” is not one of the list's filters.")
    filterset = filterset_from_query(query)
    if not filterset.is_valid():
        name, errors = next(iter(filterset.errors.items()))
        label = filterset.form.fields[name].label if name in filterset.form.fields else name
        raise SavedViewError(f"the filter “{label}” is not valid: {' '.join(errors)}")
    return applied_query(filterset), filterset.describe()[:300]


def clean_name(name):
    name = " ".join((name or "").split())
    if not name:
        raise SavedViewError("Give the view a name.")
    if len(name) > SavedView._meta.get_field("name").max_length:
        raise SavedViewError("Keep the name to 100 characters or fewer.")
    return name


def check_name_free(name, owner, exclude=None):
    """A name is taken when a shared view, or one of the owner's own views, already has it (any case)."""
    clash = SavedView.objects.annotate(lower_name=Lower("name")).filter(lower_name=name.lower())
    clash = clash.filter(Q(shared=True) | Q(owner=owner)) if owner is not None else clash.filter(shared=True)
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise SavedViewError(f"There is already a view called “{name}”; choose another name.")


def save_view(user, name, rule, query, shared):
    """Save the list (rule + filter) under `name`. Viewers' views are always personal."""
    name = clean_name(name)
    rule = rule or ""
    query, label = checked_filter(rule, query or "")
    shared = bool(shared) and is_steward(user)
    check_name_free(name, user)
    view = SavedView(name=name, rule=rule, filter_query=query, filter_label=label, shared=shared, owner=user)
    try:
        with transaction.atomic():
            view.save()
    except IntegrityError:  # saved under that name a moment ago
        raise SavedViewError(f"There is already a view called “{name}”; choose another name.") from None
    return view


def rename_view(user, view, name):
    if not can_change(user, view):
        raise PermissionError("Only stewards change shared views.")
    name = clean_name(name)
    check_name_free(name, view.owner, exclude=view)
    view.name, view.updated_at = name, timezone.now()
    try:
        with transaction.atomic():
            view.save(update_fields=["name", "updated_at"])
    except IntegrityError:
        raise SavedViewError(f"There is already a view called “{name}”; choose another name.") from None
    return view


def delete_view(user, view):
    """Delete a view and stop the reports subscribed to it; returns how many were still running.
    The subscriptions stay (their link to the view becomes empty), so each subscriber's Reports page
    says the report stopped because its view was deleted, instead of the report vanishing or being
    sent with no filter."""
    if not can_change(user, view):
        raise PermissionError("Only stewards change shared views.")
    with transaction.atomic():
        stopped = view.subscriptions.filter(active=True).update(active=False)
        view.delete()
    return stopped


def views_page(user):
    """Visible views with their active subscription counts, shared ones first."""
    return (visible_views(user).annotate(subscribers=Count("subscriptions", filter=Q(subscriptions__active=True)))
            .order_by("-shared", Lower("name"), "id"))


def matching_view(user, rule, filterset):
    """The visible saved view that is exactly this list (rule and filter), if any: one query."""
    return visible_views(user).filter(rule=rule or "", filter_query=applied_query(filterset)).first()


def describe(view):
    """"Unowned · Integration: Snowflake" for a view."""
    rule = registry.labels().get(view.rule, "All issues") if view.rule else "All issues"
    return f"{rule} · {view.filter_label}" if view.filter_label else rule

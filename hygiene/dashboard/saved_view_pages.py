"""Saved views pages: the list of views, and saving, renaming and deleting one (hygiene.dashboard.saved_views
does the work). Bad input comes back as a message, never an error page."""
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from hygiene.dashboard import saved_views
from hygiene.dashboard.forms import SavedViewForm, SavedViewRenameForm
from hygiene.dashboard.views import safe_next
from hygiene.roles import is_steward


def first_error(form):
    return next(" ".join(errors) for errors in form.errors.values())


def saved_view_list(request):
    views = list(saved_views.views_page(request.user))
    for view in views:
        view.can_change = saved_views.can_change(request.user, view)
        view.share_url = request.build_absolute_uri(view.link)
        view.described = saved_views.describe(view)
        view.subscribe_url = f"{reverse('reports:list')}?{urlencode({'scope': 'view', 'saved_view': view.pk})}"
        view.rename_form = SavedViewRenameForm(view=view) if view.can_change else None
    return render(request, "dashboard/saved_views.html", {
        "views": views, "steward": is_steward(request.user),
    })


@require_POST
def saved_view_create(request):
    steward = is_steward(request.user)
    form = SavedViewForm(request.POST, steward=steward)
    back = safe_next(request, reverse("dashboard:issues"))
    if not form.is_valid():
        messages.error(request, f"Not saved. {first_error(form)}")
        return HttpResponseRedirect(back)
    data = form.cleaned_data
    try:
        view = saved_views.save_view(request.user, data["name"], data["rule"], data["filter_query"],
                                     shared=data.get("shared", False))
    except saved_views.SavedViewError as exc:
        message = str(exc)
        messages.error(request, f"Not saved: {message[0].lower() + message[1:]}")
        return HttpResponseRedirect(back)
    whom = "everyone" if view.shared else "you"
    messages.success(request, f"Saved the view “{view.name}” for {whom}. Saved views lists it with its link "
                              "to share and a report to subscribe to.")
    return HttpResponseRedirect(back)


def changeable_view(request, pk):
    view = get_object_or_404(saved_views.visible_views(request.user), pk=pk)
    if not saved_views.can_change(request.user, view):
        raise PermissionDenied("Only stewards change shared views.")
    return view


@require_POST
def saved_view_rename(request, pk):
    view = changeable_view(request, pk)
    form = SavedViewRenameForm(request.POST, view=view)
    old = view.name
    if not form.is_valid():
        messages.error(request, f"Not renamed. {first_error(form)}")
        return redirect("dashboard:saved-views")
    try:
        saved_views.rename_view(request.user, view, form.cleaned_data["name"])
    except saved_views.SavedViewError as exc:
        messages.error(request, f"Not renamed. {exc}")
    else:
        messages.success(request, f"Renamed “{old}” to “{view.name}”.")
    return redirect("dashboard:saved-views")


@require_POST
def saved_view_delete(request, pk):
    view = changeable_view(request, pk)
    stopped = saved_views.delete_view(request.user, view)
    note = f" {stopped} report subscription{'s' if stopped != 1 else ''} to it stopped." if stopped else ""
    messages.success(request, f"Deleted the view “{view.name}”.{note}")
    return redirect("dashboard:saved-views")

"""Roles: viewers read; stewards also change things (edits, snoozes); admins run the admin."""
import functools

from django.core.exceptions import PermissionDenied

STEWARDS = "Stewards"
VIEWERS = "Viewers"


def ensure_roles():
    from django.contrib.auth.models import Group

    stewards, _ = Group.objects.get_or_create(name=STEWARDS)
    viewers, _ = Group.objects.get_or_create(name=VIEWERS)
    return stewards, viewers


def roles(user):
    """The user's role groups, read once per request (kept on the user object)."""
    cached = getattr(user, "_roles", None)
    if cached is None:
        cached = user._roles = frozenset(user.groups.filter(name__in=(STEWARDS, VIEWERS)).values_list("name",
                                                                                                     flat=True))
    return cached


def is_steward(user):
    if not user.is_authenticated:
        return False
    return user.is_superuser or STEWARDS in roles(user)


def can_read(user):
    """Viewers, stewards, staff and superusers read the dashboard; a signed-in user in no role does not."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or user.is_staff or bool(roles(user))


def steward_required(view):
    """The view answers 403 to anyone but a steward."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_steward(request.user):
            raise PermissionDenied("Only stewards can change anything here.")
        return view(request, *args, **kwargs)

    return wrapped


class RoleRequiredMiddleware:
    """After sign-in, every page needs a role: anyone else gets a plain "ask an admin for access" page.
    Public views (sign-in, one-click unsubscribe, health checks), sign-out and the admin (which checks
    staff itself) are left alone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        from django.shortcuts import render

        if not getattr(view_func, "login_required", True) or not request.user.is_authenticated:
            return None
        match = request.resolver_match
        if match is not None and (match.url_name == "logout" or match.namespace == "admin"):
            return None
        if can_read(request.user):
            return None
        return render(request, "registration/no_access.html", {"no_access": True}, status=403)

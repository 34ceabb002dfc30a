"""Single sign-on with OpenID Connect (mozilla-django-oidc): users are matched by e-mail (created on
first sign-in), and the identity provider's group claim decides their role on every sign-in."""
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404
from django.urls import path, reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from hygiene.roles import STEWARDS, VIEWERS, ensure_roles


def role_from_claims(claims):
    """Stewards, Viewers or None from the configured group claim (a list, or one comma-separated string)."""
    groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(groups, str):
        groups = [part.strip() for part in groups.split(",")]
    groups = {str(group) for group in groups if group}
    if groups & set(settings.OIDC_STEWARD_GROUPS):
        return STEWARDS
    if groups & set(settings.OIDC_VIEWER_GROUPS):
        return VIEWERS
    return None


class RoleMappingOIDCBackend(OIDCAuthenticationBackend):
    def filter_users_by_claims(self, claims):
        """Accounts single sign-on created (no password of their own), by e-mail: an identity provider
        account never takes over a local password account, least of all an admin's."""
        email = claims.get("email")
        if not email or claims.get("email_verified") is False:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(email__iexact=email, is_superuser=False, password__startswith="!")

    def verify_claims(self, claims):
        """An e-mail the provider says is unverified names nobody."""
        return bool(claims.get("email")) and claims.get("email_verified") is not False

    def authenticate(self, request, **kwargs):
        """Only the sign-on callback, with the nonce its own start stored, signs anyone in this way (not a
        password form posted with a code and state in its address)."""
        if request is None or request.path != reverse("oidc_authentication_callback") or not kwargs.get("nonce"):
            return None
        return super().authenticate(request, **kwargs)

    def create_user(self, claims):
        user = super().create_user(claims)
        user.set_unusable_password()  # it signs in through the provider only
        user.save(update_fields=["password"])
        return self.update_user(user, claims)

    def get_username(self, claims):
        """The provider's username for a new account; never one a local account already uses."""
        base = str(claims.get("preferred_username") or claims.get("email") or claims.get("sub") or "sso-user")[:120]
        username, n = base, 1
        while self.UserModel.objects.filter(username__iexact=username).exists():
            n += 1
            username = f"{base}-sso{n if n > 2 else ''}"
        return username

    def update_user(self, user, claims):
        stewards, viewers = ensure_roles()
        user.first_name = str(claims.get("given_name") or user.first_name)[:150]
        user.last_name = str(claims.get("family_name") or user.last_name)[:150]
        user.save(update_fields=["first_name", "last_name"])
        role = role_from_claims(claims)
        # The IdP is the source of truth for people who sign in through it: their role follows its groups.
        user.groups.remove(stewards, viewers)
        if role == STEWARDS:
            user.groups.add(stewards)
        elif role == VIEWERS:
            user.groups.add(viewers)
        return user


def when_enabled(view):
    """The view when single sign-on is configured; a 404 otherwise."""
    @login_not_required
    def wrapped(request, *args, **kwargs):
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        return view(request, *args, **kwargs)

    return wrapped


urlpatterns = [
    path("authenticate/", when_enabled(OIDCAuthenticationRequestView.as_view()), name="oidc_authentication_init"),
    path("callback/", when_enabled(OIDCAuthenticationCallbackView.as_view()), name="oidc_authentication_callback"),
]

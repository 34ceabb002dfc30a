"""Signing in: wrong passwords lock a username and an address out (with a clear page and an admin unlock),
and single sign-on through a local OpenID Connect provider maps the provider's groups to roles."""
from urllib.parse import urlsplit

import pytest
import requests
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model

from hygiene.roles import STEWARDS, VIEWERS
from tests.oidc_provider import Provider

pytestmark = pytest.mark.django_db


def sign_in(client, username, password, ip="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_wrong_passwords_lock_the_username_from_any_address_until_an_admin_unlocks_it(client, steward, settings):
    settings.AXES_FAILURE_LIMIT = 5
    for n in range(4):
        response = sign_in(client, "stella", "wrong", ip=f"10.0.1.{n}")
        assert response.status_code == 200 and "do not match" in response.content.decode()
        assert "After 5 wrong tries in a row" in response.content.decode()
    assert sign_in(client, "stella", "wrong", ip="10.0.1.9").status_code == 429, "the fifth locks"
    locked = sign_in(client, "stella", "pw-steward-1", ip="10.0.2.1")
    assert locked.status_code == 429
    assert "Signing in is paused" in locked.content.decode() and "15 minutes" in locked.content.decode()
    assert "_auth_user_id" not in client.session

    admin = get_user_model().objects.create_superuser("root-admin", "admin@example.com", "pw-admin-1")
    other = client.__class__()
    other.force_login(admin)
    listing = other.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "stella" in listing.content.decode()
    AccessAttempt.objects.filter(username="stella").delete()  # what the admin's "delete selected" does

    assert sign_in(client, "stella", "pw-steward-1", ip="10.0.2.1").status_code == 302
    assert client.get("/").status_code == 200


def test_wrong_passwords_from_one_address_lock_that_address_only(client, steward, viewer, settings):
    settings.AXES_FAILURE_LIMIT = 5
    for n in range(5):
        sign_in(client, f"guess{n}", "wrong", ip="10.9.9.9")
    assert sign_in(client, "stella", "pw-steward-1", ip="10.9.9.9").status_code == 429
    assert sign_in(client, "victor", "pw-viewer-1", ip="10.1.1.1").status_code == 302, "other addresses work"


def test_a_right_password_before_the_limit_resets_the_count(client, steward, settings):
    settings.AXES_FAILURE_LIMIT = 3
    sign_in(client, "stella", "wrong")
    sign_in(client, "stella", "wrong")
    assert sign_in(client, "stella", "pw-steward-1").status_code == 302
    client.post("/accounts/logout/")
    sign_in(client, "stella", "wrong")
    sign_in(client, "stella", "wrong")
    assert sign_in(client, "stella", "pw-steward-1").status_code == 302


@pytest.fixture
def provider(settings):
    provider = Provider().start()
    for name, value in provider.settings().items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "hygiene.sso.RoleMappingOIDCBackend"]
    yield provider
    provider.stop()


def single_sign_on(client, provider, **claims):
    provider.signs_in(**claims)
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302 and start["Location"].startswith(provider.issuer + "/authorize")
    at_provider = requests.get(start["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(at_provider.headers["Location"])
    assert back.path == "/oidc/callback/"
    return client.get(f"{back.path}?{back.query}")


@pytest.mark.parametrize("groups, role", [(["data-stewards", "everyone"], STEWARDS), (["analysts"], VIEWERS)])
def test_single_sign_on_maps_the_providers_groups_to_a_role(client, provider, groups, role):
    done = single_sign_on(client, provider, sub="u-123", email="dana@acme.example", given_name="Dana",
                          family_name="Lee", preferred_username="dana", groups=groups)
    assert done.status_code == 302 and done["Location"] == "/"
    user = get_user_model().objects.get(email="dana@acme.example")
    assert [g.name for g in user.groups.all()] == [role] and user.get_full_name() == "Dana Lee"
    home = client.get("/")
    assert home.status_code == 200 and "Dana Lee" in home.content.decode()
    assert ("POST", "/token") in provider.requests and ("GET", "/userinfo") in provider.requests


def test_the_role_follows_the_provider_on_every_sign_in(client, provider):
    single_sign_on(client, provider, sub="u-9", email="sam@acme.example", groups=["data-stewards"])
    client.post("/accounts/logout/")
    single_sign_on(client, provider, sub="u-9", email="sam@acme.example", groups=[])
    user = get_user_model().objects.get(email="sam@acme.example")
    assert not user.groups.exists()
    response = client.get("/")
    assert response.status_code == 403 and "Ask an admin for access" in response.content.decode()


def test_the_sign_in_page_offers_single_sign_on_only_when_configured(client, settings):
    assert "Sign in with" not in client.get("/accounts/login/").content.decode()
    assert client.get("/oidc/authenticate/").status_code == 404
    settings.OIDC_ENABLED, settings.OIDC_PROVIDER_NAME = True, "Acme SSO"
    assert "Sign in with Acme SSO" in client.get("/accounts/login/").content.decode()


def test_a_forged_callback_signs_nobody_in(client, provider):
    response = client.get("/oidc/callback/?code=made-up&state=made-up")
    assert response.status_code in (302, 400)
    assert "_auth_user_id" not in client.session


def test_a_provider_account_never_takes_over_a_local_account_with_the_same_e_mail(client, provider):
    admin = get_user_model().objects.create_superuser("dana", "dana@acme.example", "pw-admin-1")
    single_sign_on(client, provider, sub="u-77", email="dana@acme.example", preferred_username="dana",
                   groups=["analysts"])
    signed_in = get_user_model().objects.get(pk=client.session["_auth_user_id"])
    assert signed_in.pk != admin.pk and not signed_in.is_staff and not signed_in.has_usable_password()
    assert signed_in.username == "dana-sso"
    admin.refresh_from_db()
    assert admin.is_superuser and admin.check_password("pw-admin-1"), "the admin account is untouched"


def test_signing_in_to_ones_own_account_does_not_forgive_guesses_at_someone_elses(client, steward, viewer,
                                                                                   settings):
    settings.AXES_FAILURE_LIMIT = 5
    for _ in range(4):
        sign_in(client, "stella", "guess", ip="10.5.5.5")
    assert sign_in(client, "victor", "pw-viewer-1", ip="10.5.5.5").status_code == 302
    client.post("/accounts/logout/")
    assert sign_in(client, "stella", "guess", ip="10.5.5.5").status_code == 429, "the fifth guess locks"


def test_behind_a_proxy_the_client_address_is_locked_not_the_proxys(client, steward, viewer, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(3):
        client.post("/accounts/login/", {"username": f"guess{n}", "password": "x"}, REMOTE_ADDR="10.0.0.2",
                    HTTP_X_FORWARDED_FOR="203.0.113.9")
    blocked = client.post("/accounts/login/", {"username": "stella", "password": "pw-steward-1"},
                          REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert blocked.status_code == 429
    other = client.post("/accounts/login/", {"username": "victor", "password": "pw-viewer-1"},
                        REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert other.status_code == 302, "another client behind the same proxy signs in"
    client.post("/accounts/logout/")
    spoofed = client.post("/accounts/login/", {"username": "stella", "password": "pw-steward-1"},
                          REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9")
    assert spoofed.status_code == 429, "an address the client made up in front changes nothing"


def test_a_failed_single_sign_on_lands_on_the_sign_in_page(client, provider):
    response = client.get("/oidc/callback/?code=made-up&state=made-up")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get(response["Location"]).status_code == 200

"""Request and response guards every page shares.

- A Content-Security-Policy on every response: scripts only from this site's own files (no inline
  script, so text from Secoda can never run as one), no plugins, no framing, forms post here only.
- Requests carrying a NUL character (in the path, the query string or a form) are answered 400 with a
  plain message: PostgreSQL stores no NUL, and no id or filter Secoda sends contains one.
"""
from django.conf import settings
from django.shortcuts import render

CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",  # style="width: 40%" on meters; no script can hide in a style
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", getattr(settings, "CONTENT_SECURITY_POLICY", CSP))
        return response


def has_nul(request):
    if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
        return True
    if request.method == "POST" and request.content_type in ("application/x-www-form-urlencoded",
                                                             "multipart/form-data"):
        return any("\x00" in key or any("\x00" in value for value in values)
                   for key, values in request.POST.lists())
    return False


class RejectNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if has_nul(request):
            return render(request, "bad_request.html", {
                "problem": "The address or the form contained a NUL character, which no page here accepts. "
                           "Nothing was saved."}, status=400)
        return self.get_response(request)


def sign_in(request):
    """What the sign-in page says: single sign-on when configured, and the lockout rule."""
    return {
        "oidc_enabled": settings.OIDC_ENABLED,
        "oidc_provider_name": getattr(settings, "OIDC_PROVIDER_NAME", ""),
        "axes_failure_limit": settings.AXES_FAILURE_LIMIT,
        "axes_cooloff_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
    }


def forget_own_failures(sender, request, user, **kwargs):
    """After a successful sign-in, that username's failed attempts are forgotten; failures others made from
    the same address still count against that address."""
    from axes.models import AccessAttempt

    AccessAttempt.objects.filter(username=user.get_username()).delete()


def client_ip(request):
    """The address a sign-in comes from: REMOTE_ADDR, or behind AXES_PROXY_COUNT trusted proxies the
    X-Forwarded-For entry the nearest one added (a client can put anything further left)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")

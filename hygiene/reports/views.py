from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from catalog_sync.client import redact
from hygiene.accounts.services import linked_person
from hygiene.reports import services
from hygiene.reports.content import build_report, scope_label
from hygiene.reports.emails import read_unsubscribe_token, unsubscribe_url
from hygiene.reports.forms import SubscriptionForm
from hygiene.reports.models import Subscription
from hygiene.roles import is_steward


def own_subscriptions(request):
    subscriptions = Subscription.objects.select_related("user", "saved_view")
    return subscriptions if is_steward(request.user) else subscriptions.filter(user=request.user)


def subscription_list(request):
    steward = is_steward(request.user)
    if request.method == "POST":
        form = SubscriptionForm(request.POST, user=request.user, steward=steward)
        if form.is_valid():
            subscription = form.save()
            messages.success(request, f"Subscribed {subscription.email} to a {subscription.cadence} "
                                      f"report on {scope_label(subscription)}. The first one goes out "
                                      f"{subscription.next_due_at:%b %-d at %H:%M} UTC.")
            return redirect("reports:list")
    else:
        # "Get it by e-mail" on a saved view (or any link) may preselect what the report covers.
        initial = {name: request.GET[name] for name in ("scope", "team", "integration", "saved_view")
                   if name in request.GET}
        form = SubscriptionForm(user=request.user, steward=steward, initial=initial)
    subscriptions = list(own_subscriptions(request).order_by("-active", "next_due_at"))
    for subscription in subscriptions:
        subscription.scope_text = scope_label(subscription)
    return render(request, "reports/list.html", {"form": form, "subscriptions": subscriptions, "steward": steward,
                                                 "person_link": linked_person(request.user)})


@require_POST
def subscription_delete(request, pk):
    subscription = get_object_or_404(own_subscriptions(request), pk=pk)
    subscription.delete()
    messages.success(request, f"{subscription.email} no longer gets that report.")
    return redirect("reports:list")


@require_POST
def subscription_send_now(request, pk):
    subscription = get_object_or_404(own_subscriptions(request), pk=pk)
    try:
        services.send_now(subscription)
    except Exception as exc:
        messages.error(request, f"The report could not be sent: {redact(exc)[:300]}. Check the e-mail settings.")
    else:
        messages.success(request, f"Sent the report to {subscription.email} now; the schedule is unchanged.")
    return redirect("reports:list")


def subscription_preview(request, pk):
    subscription = get_object_or_404(own_subscriptions(request), pk=pk)
    html = render_to_string("emails/report-body.html", {
        "subscription": subscription, "report": build_report(subscription),
        # Shown in the browser, not sent: no "sent on request" line.
        "unsubscribe_link": unsubscribe_url(subscription), "preview": False,
    })
    return HttpResponse(html)


@login_not_required
@csrf_exempt  # RFC 8058 one-click unsubscribe: mail clients POST without a CSRF token; the signed link is the proof
def unsubscribe(request, token):
    found = read_unsubscribe_token(token)
    subscription = None
    if found:
        subscription = Subscription.objects.filter(pk=found[0], email=found[1]).first()
    if subscription is None:
        return render(request, "reports/unsubscribe.html", {"invalid": True}, status=404)
    if request.method == "POST":
        Subscription.objects.filter(pk=subscription.pk).update(active=False)
        return render(request, "reports/unsubscribe.html", {"done": True, "subscription": subscription})
    return render(request, "reports/unsubscribe.html", {"subscription": subscription, "token": token,
                                                        "scope": scope_label(subscription)})

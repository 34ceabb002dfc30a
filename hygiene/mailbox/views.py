from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.clickjacking import xframe_options_sameorigin

from hygiene.mailbox.backend import BACKEND
from hygiene.mailbox.models import Message
from hygiene.roles import is_steward

# The kept HTML is a report we rendered, but it quotes Secoda's text: shown sandboxed, with no script.
HTML_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


def visible_messages(request):
    """Stewards read every kept message; others only those sent to their own address."""
    messages = Message.objects.all()
    if is_steward(request.user):
        return messages
    key = Message.key_for([request.user.email or ""])
    if not key:
        return messages.none()
    return messages.filter(recipient_key__contains=key)  # "|ann@x|" never matches "|joann@x|"


def inbox(request):
    page = Paginator(visible_messages(request).defer("body_html", "body_text"), 50).get_page(request.GET.get("page"))
    return render(request, "mailbox/inbox.html", {
        "page": page, "keeping": settings.EMAIL_BACKEND == BACKEND, "steward": is_steward(request.user),
    })


def message(request, pk):
    return render(request, "mailbox/message.html", {"message": get_object_or_404(visible_messages(request), pk=pk)})


@xframe_options_sameorigin
def message_html(request, pk):
    found = get_object_or_404(visible_messages(request), pk=pk)
    response = HttpResponse(found.body_html or "<p>This message has no HTML part.</p>")
    response.headers["Content-Security-Policy"] = HTML_POLICY
    return response

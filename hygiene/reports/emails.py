"""Report e-mails: three templates (subject, text, HTML) built by one function, with a one-click
unsubscribe link and List-Unsubscribe headers."""
from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

UNSUBSCRIBE_SALT = "hygiene.reports.unsubscribe"


def unsubscribe_token(subscription):
    return signing.dumps({"s": subscription.pk, "e": subscription.email}, salt=UNSUBSCRIBE_SALT)


def read_unsubscribe_token(token):
    """The subscription id a token names, or None when it is forged or damaged."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return data.get("s"), data.get("e")


def unsubscribe_url(subscription):
    return f"{settings.SITE_URL}{reverse('reports:unsubscribe', args=[unsubscribe_token(subscription)])}"


def make_email(template, context, to, headers=None):
    # One line, whatever names from Secoda hold (a CR or LF in a header is refused by the mail library).
    subject = " ".join(render_to_string(f"emails/{template}-subject.txt", context).split())
    text = render_to_string(f"emails/{template}-body.txt", context)
    html = render_to_string(f"emails/{template}-body.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to], headers=headers or {})
    message.attach_alternative(html, "text/html")
    return message


def report_email(subscription, report, preview=False):
    link = unsubscribe_url(subscription)
    context = {"subscription": subscription, "report": report, "unsubscribe_link": link, "preview": preview}
    return make_email("report", context, subscription.email, headers={
        "List-Unsubscribe": f"<{link}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    })

from django.conf import settings

from hygiene.mailbox.backend import BACKEND


def mailbox(request):
    """Whether mail is kept here (the navigation then links to the mailbox)."""
    return {"mailbox_enabled": settings.EMAIL_BACKEND == BACKEND}

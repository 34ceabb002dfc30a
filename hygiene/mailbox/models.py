from django.db import models
from django.utils import timezone


class Message(models.Model):
    """An e-mail the dashboard would have sent, kept where a person can read it (the demo, or a
    deployment without a mail server)."""

    sent_at = models.DateTimeField(default=timezone.now, db_index=True)
    from_email = models.CharField(max_length=320)
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=998)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    # "|ann@example.com|bob@example.com|": whole, lower-cased addresses, so a lookup matches one exactly.
    recipient_key = models.TextField(blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self):
        return self.subject

    @staticmethod
    def key_for(addresses):
        from email.utils import getaddresses

        found = sorted({address.strip().lower() for _, address in getaddresses(addresses) if address.strip()})
        return "|" + "|".join(found) + "|" if found else ""

    @property
    def recipients(self):
        return ", ".join(self.to)

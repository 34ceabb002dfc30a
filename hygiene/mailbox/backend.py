"""An e-mail backend that keeps every message in the database, readable at /mailbox/ and in the admin."""
from django.core.mail.backends.base import BaseEmailBackend

BACKEND = "hygiene.mailbox.backend.EmailBackend"


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        from hygiene.mailbox.models import Message

        kept = 0
        for email in email_messages:
            html = next((content for content, mimetype in getattr(email, "alternatives", [])
                         if mimetype == "text/html"), "")
            recipients = [*email.to, *email.cc, *email.bcc]
            Message.objects.create(
                from_email=email.from_email, to=recipients, recipient_key=Message.key_for(recipients),
                subject=email.subject,
                body_text=email.body, body_html=html, headers={k: str(v) for k, v in email.extra_headers.items()},
            )
            kept += 1
        return kept

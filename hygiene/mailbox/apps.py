from django.apps import AppConfig


class MailboxConfig(AppConfig):
    name = "hygiene.mailbox"
    label = "mailbox"
    verbose_name = "Mailbox (mail kept here instead of sent)"

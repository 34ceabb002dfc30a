from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "hygiene.reports"
    label = "reports"
    verbose_name = "E-mail reports"

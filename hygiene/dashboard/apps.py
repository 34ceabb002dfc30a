from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "hygiene.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"

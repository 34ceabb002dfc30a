from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "hygiene.lifecycle"
    label = "lifecycle"
    verbose_name = "Issue history"

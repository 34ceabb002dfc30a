from django.apps import AppConfig


class SuggestionsConfig(AppConfig):
    name = "hygiene.suggestions"
    label = "suggestions"
    verbose_name = "Suggested fixes"

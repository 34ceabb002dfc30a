from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "hygiene.accounts"
    label = "accounts"
    verbose_name = "Dashboard users and their Secoda people"

from django.apps import AppConfig


class SecodaEmulatorConfig(AppConfig):
    name = "secoda_emulator"
    verbose_name = "Secoda emulator (demo and tests)"

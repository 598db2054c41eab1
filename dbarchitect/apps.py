from django.apps import AppConfig


class DbArchitectConfig(AppConfig):
    name = "dbarchitect"
    verbose_name = "DB Architect"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)

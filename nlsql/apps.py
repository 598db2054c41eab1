from django.apps import AppConfig


class NlsqlConfig(AppConfig):
    name = "nlsql"
    verbose_name = "Ask the database"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)

from django.apps import AppConfig


class OptimizationsConfig(AppConfig):
    name = "optimizations"
    verbose_name = "Optimizations"
    default_auto_field = "django.db.models.BigAutoField"

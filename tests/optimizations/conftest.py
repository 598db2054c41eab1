from .apply_fixtures import orders  # noqa: F401

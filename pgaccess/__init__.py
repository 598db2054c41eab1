"""Everything DB Architect says to a PostgreSQL target, in one place.

A plain package, like django.contrib.postgres: no models, no Celery, and no import of a
project app (see docs/architecture.md). The apps reach a target only through it.
"""

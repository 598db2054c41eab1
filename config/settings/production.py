"""Production, the default of every entry point: a real secret key is required, cookies
are secure, DEBUG only with DEBUG=1 (base)."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set; the production settings (what manage.py, WSGI, ASGI and Celery "
        "use unless DJANGO_SETTINGS_MODULE says otherwise) need one: `make` keeps one in "
        ".local/secret_key, docker compose reads it from .env (sh docker/init-env.sh)"
    )
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True

# gunicorn serves the admin's CSS/JS (collected into STATIC_ROOT) itself: no extra web server.
MIDDLEWARE.insert(  # noqa: F405
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,  # noqa: F405
    "whitenoise.middleware.WhiteNoiseMiddleware",
)

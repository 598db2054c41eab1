import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from config.commands import ProjectCommand


class Command(ProjectCommand):
    help = (
        "Create the admin superuser if it does not exist. The password comes from "
        "--password or DJANGO_ADMIN_PASSWORD, otherwise one is generated and printed once."
    )

    interrupted = "run it again; it creates the user only once."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin", help="Username (default: admin).")
        parser.add_argument("--email", default="admin@example.com", help="E-mail address.")
        parser.add_argument(
            "--password",
            default=None,
            help="Password; default: $DJANGO_ADMIN_PASSWORD, else a generated one.",
        )

    def handle(self, *args, username: str, email: str, password: str | None, **options):
        if not username.strip():
            raise CommandError("--username must not be empty")
        user_model = get_user_model()
        existing = user_model.objects.filter(username=username).first()
        if existing is not None and not existing.is_superuser:
            raise CommandError(
                f"User {username!r} exists but is not a superuser; it was left as it is. "
                "Choose another --username, or make it a superuser in the admin."
            )
        if existing is not None:
            self.stdout.write(f"Admin user {username!r} exists; password unchanged.")
            return
        password = password or os.environ.get("DJANGO_ADMIN_PASSWORD") or ""
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        _validate(user_model(username=username, email=email), password)
        user_model.objects.create_superuser(username=username, email=email, password=password)
        if generated:
            self.stdout.write(
                self.style.SUCCESS(f"Created admin user {username!r} with password: {password}")
            )
            self.stdout.write("It is shown only this once.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Created admin user {username!r}."))


def _validate(user, password: str) -> None:
    """The admin's checks: a valid username and e-mail, a password the validators accept."""
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        fields = "; ".join(
            f"--{name}: {' '.join(errors)}" for name, errors in exc.message_dict.items()
        )
        raise CommandError(f"Cannot create the admin user: {fields}") from None
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise CommandError(
            f"The admin password is refused: {' '.join(exc.messages)} Choose another with "
            "--password or DJANGO_ADMIN_PASSWORD, or give neither to generate one."
        ) from None

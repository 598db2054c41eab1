"""The API's authentication (kept apart from config.api: DRF's settings import it)."""

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication


class ApiTokenAuthentication(TokenAuthentication):
    """DRF's token authentication; a key that no token can have (too long, not letters and
    digits, a NUL) is refused before the lookup, where PostgreSQL would fail on a NUL."""

    def authenticate_credentials(self, key: str):
        longest = self.get_model()._meta.get_field("key").max_length
        if not (key.isascii() and key.isalnum() and len(key) <= longest):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)

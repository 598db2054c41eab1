"""What the apps' system checks share: settings that must lie within limits."""

from collections.abc import Mapping

from django.conf import settings
from django.core.checks import Error


def numeric_setting_errors(
    limits: Mapping[str, tuple[float | None, float | None]], *, check_id: str
) -> list[Error]:
    """One error per numeric setting outside its limits (NaN is outside every limit)."""
    errors = []
    for name, (low, high) in limits.items():
        value = getattr(settings, name)
        if (low is None or value >= low) and (high is None or value <= high):
            continue
        if high is None:
            wanted = f"at least {low}"
        elif low is None:
            wanted = f"at most {high}"
        else:
            wanted = f"between {low} and {high}"
        errors.append(
            Error(
                f"{name}={value!r} is out of range: it must be {wanted}",
                hint=f"Fix {name} in the environment or in .env.",
                id=check_id,
            )
        )
    return errors

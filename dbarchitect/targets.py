"""Audit targets as rows: one Target per configured target, holding its admin switches.

Which targets exist and how to reach them is pgaccess.targets (the environment's); the
rows only hold names and switches, never a connection URL.
"""

from pgaccess.targets import DEFAULT_TARGET, configured_targets, target_connection

from .models import Target


def target_sync() -> list[Target]:
    """Create a Target row for every configured target; keep their admin switches."""
    result = []
    for name in configured_targets():
        target, _ = Target.objects.get_or_create(
            name=name, defaults={"allow_verify": name == DEFAULT_TARGET}
        )
        result.append(target)
    return result


def target_get(*, name: str) -> Target:
    """The Target row of a configured target, created on first use (UnknownTarget if none)."""
    target_connection(name)
    target = Target.objects.filter(name=name).first()
    if target is None:
        target_sync()
        target = Target.objects.get(name=name)
    return target

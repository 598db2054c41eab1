"""Waiting on a Celery worker in tests: a bound on how long, never a speed assertion."""

import time


def wait_for(predicate, *, seconds: float, what: str):
    """Poll predicate() every half second until it is truthy and return that value; fail
    naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}")

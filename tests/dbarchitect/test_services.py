import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

QUEUE_WITH_REDIS_DOWN = """
from kombu.exceptions import OperationalError
from config.celery_app import app
app.conf.task_always_eager = False
from dbarchitect.services import audit_queue
try:
    audit_queue(target="default")
except OperationalError as exc:
    print("broker-error:", exc)
else:
    print("queued")
"""


@pytest.mark.django_db(transaction=True)
def test_audit_queue_says_the_broker_is_down_instead_of_crashing():
    # A fresh process: the Celery app reads its broker URL once, at start.
    db = connection.settings_dict
    env = {
        **os.environ,
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", QUEUE_WITH_REDIS_DOWN],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "broker-error:" in result.stdout

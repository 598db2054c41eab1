# The DB Architect application image: web (gunicorn), worker and beat (Celery), migrate, seed.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

# git: proposals commit a migration on a branch (GitPython); libpq5: psql-compatible client lib.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git libpq5 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# PyTorch's CPU build: the default build from PyPI pulls several GB of CUDA libraries that a
# CPU-only embedding model never uses. Pass --build-arg TORCH_INDEX_URL= to use PyPI's.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .

# The admin's CSS/JS, served by gunicorn through WhiteNoise; no database needed for this.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input -v0

RUN useradd --create-home --uid 10001 dbarchitect \
    && mkdir -p /run/prometheus-multiproc \
    && chown dbarchitect /run/prometheus-multiproc
USER dbarchitect

EXPOSE 8000
CMD ["gunicorn", "-c", "docker/gunicorn.conf.py"]

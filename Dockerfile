# The image behind every service of docker-compose.yml: the API by default,
# `python -m worker` for the worker, `alembic upgrade head` for the migration job.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# An unprivileged user owns nothing but the data directory.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app

# The project and its dependencies (redis: shared rate-limit storage across API replicas).
COPY pyproject.toml ./
COPY app/ app/
COPY worker/ worker/
RUN pip install ".[redis]" \
    && rm -rf build ./*.egg-info

COPY migrations/ migrations/
COPY alembic.ini ./

# The sources in /app come first on sys.path: settings locate alembic.ini and .data from them.
# WEB_CONCURRENCY: API processes on the port (python -m app runs that many uvicorn
# workers); more than one needs RATE_LIMIT_STORAGE_URI=redis://… for shared rate limits.
ENV PYTHONPATH=/app \
    DATA_DIR=/app/.data \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=1
RUN mkdir -p /app/.data && chown app:app /app/.data

USER app

EXPOSE 8000

# No curl in the slim image: ask the API with Python's standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/v1/healthz' % os.environ.get('PORT', '8000'), timeout=4)" || exit 1

# The API (python is PID 1 and receives SIGTERM). X-Forwarded-For is believed only
# from the proxies listed in TRUSTED_PROXIES.
CMD ["python", "-m", "app"]

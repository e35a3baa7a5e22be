# WhatsApp IA — production image: gunicorn serving create_app(), migrations applied at start.

# Chart.js for /tablero, from the npm registry at build time (same pin as the Makefile's CHARTJS_VERSION).
FROM node:20-slim AS chartjs
RUN npm install --no-save --no-audit --no-fund --prefix /build chart.js@4.6.1

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLASK_APP=app

# ffmpeg converts voice notes to 16 kHz mono WAV for transcription.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
COPY --from=chartjs /build/node_modules/chart.js/dist/chart.umd.js static/vendor/chart.umd.js

# Non-root user; instance/ holds the SQLite file (when used) and downloaded media.
RUN useradd --create-home --uid 10001 --user-group app \
    && mkdir -p /app/instance/media \
    && chown -R app:app /app/instance

USER app

EXPOSE 8000

# gevent workers: a request waiting on the database, Redis or an open live-update stream (/eventos, one per
# panel tab, open for minutes) is a greenlet, not a thread, so hundreds of open panels take no request
# capacity from webhooks and health checks. One worker per core; up to 1000 connections each.
CMD ["sh", "-c", "flask --app app db upgrade && exec gunicorn -w 2 -k gevent --worker-connections 1000 -b 0.0.0.0:8000 'app:create_app()'"]

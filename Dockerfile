# The platform image: one image for every `ioc` process (worker, sink, gateway, notifier,
# setup/acl jobs). Used by infra/compose/compose.yaml and infra/k8s. Build from the repo root:
#   docker build -t ioc-platform:0.1.0 .
# Not built in CI here (no Docker on the build machines); see docs/operations.md.
FROM python:3.11.7-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY streams streams
COPY schemas schemas
COPY connectors connectors
COPY dashboards dashboards
COPY infra infra
RUN python -m venv /opt/ioc \
 && /opt/ioc/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/ioc/bin/pip install --no-cache-dir -c requirements.lock .

FROM python:3.11.7-slim-bookworm
# Pango for the PDF briefings (WeasyPrint); nothing else from the OS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/ioc /opt/ioc
RUN useradd --uid 10001 --home-dir /var/lib/ioc --create-home ioc
USER 10001
WORKDIR /var/lib/ioc
ENV PATH=/opt/ioc/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    IOC_DATA_DIR=/var/lib/ioc
EXPOSE 9464 9465
ENTRYPOINT ["ioc"]
CMD ["run"]

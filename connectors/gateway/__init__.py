"""The ingestion gateway: agencies that cannot run a Kafka client send JSON over HTTP.

``ioc gateway`` runs it (:mod:`.server`); ``ioc gateway keys add|list|revoke`` manages the
agencies' keys (:mod:`.keys`). The HTTP routes and their answers are in :mod:`.app`, the
validation of a request in :mod:`.ingest`, Open311 GeoReport v2 in :mod:`.open311`, the OpenAPI
description in :mod:`.openapi`. The agency-facing guide is ``docs/onboarding.md``.
"""

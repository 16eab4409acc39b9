"""Alert notifications to duty officers: routing, grouping, silences, inhibition, escalation,
acknowledgement, channels and history. Operator guide: ``docs/notifications.md``.

Pure logic (tested on a clock the tests control):

- :mod:`.model` — alert labels, matchers, episode/transition keys, durations, Vietnamese words;
- :mod:`.config` — the versioned YAML routing config, validated with file:line errors;
- :mod:`.engine` — the dispatcher: groups, dedup, repeat, silences, inhibition, escalation, acks,
  and rebuilding all of it from the history topic;
- :mod:`.deliveries` — who gets a notification on which channel; the ledger of deliveries;
- :mod:`.render` — Vietnamese email (text + HTML), Telegram, SMS text, Alertmanager v4 JSON;
- :mod:`.history` — the ``ioc.alert_event.v1`` records; :mod:`.tokens` — signed ack links.

Thin adapters: :mod:`.channels` (SMTP, webhook, Telegram, HTTP templates, file outbox),
:mod:`.sender` (intent → deliveries with retries → outcome → fallback), :mod:`.kafka_io`
(read to the end, follow, write with confirmation) and :mod:`.service` (the asyncio process with
its HTTP server for ack links).
"""

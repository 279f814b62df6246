"""What an operator can measure, declared once (prometheus_client).

The metrics live in a registry of their own (not the library's global one),
so tests can read them and a second app in one process starts from known
values. Label values are kinds and platforms only: never a chat, a member,
a ballot's content or a token.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

COMMANDS = Counter("commons_commands_total", "Inbound events handled, by kind (the command word, or "
                   "choice/membership).", ["kind"], registry=REGISTRY)
REPLY_SECONDS = Histogram(
    "commons_reply_seconds", "From an inbound event reaching the core to its replies being queued for delivery.",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0), registry=REGISTRY)
OUTBOX_DEPTH = Gauge("commons_outbox_depth", "Actions in the outbox not yet delivered nor given up.",
                     registry=REGISTRY)
OUTBOX_OLDEST_SECONDS = Gauge("commons_outbox_oldest_seconds", "Age of the oldest undelivered action (0: none).",
                              registry=REGISTRY)
DUE_LATENESS_SECONDS = Histogram(
    "commons_due_lateness_seconds", "How late scheduled work ran after it fell due.",
    buckets=(0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0, 86400.0), registry=REGISTRY)
DUE_DONE = Counter("commons_due_work_total", "Scheduled items done (deadlines, lapses, reminders…).",
                   registry=REGISTRY)
RATE_LIMITED = Counter("commons_rate_limited_total", "Answers from a platform asking the bot to slow down (429).",
                       ["platform"], registry=REGISTRY)
DELIVERY_RETRIES = Counter("commons_delivery_retries_total", "Outbox actions attempted again after a failure.",
                           ["platform"], registry=REGISTRY)
RECEIVE_ERRORS = Counter("commons_receive_errors_total", "Failed Matrix syncs and Telegram polls.",
                         ["platform"], registry=REGISTRY)
ACTIVE = Gauge("commons_active", "1 while this process serves its platform accounts, 0 while it stands by.",
               registry=REGISTRY)

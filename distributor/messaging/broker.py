"""The delivery broker: the Redis that holds the RQ queues of the delivery workers.

The task store may be one Redis, a Sentinel master or a Redis Cluster; RQ needs one Redis (its
keys ``rq:job:*``, ``rq:queue:*`` and ``rq:queues`` fall in different hash slots, and its worker
needs a connection pool). So deliveries go through ``SWARMQUEUE_DELIVERY_REDIS_URL``: by default
the store's URL when that is one Redis or a Sentinel (RQ then gets the Sentinel's master
client); required when the store is a cluster, and never itself a cluster URL
(:class:`~distributor.errors.DeliveryBrokerRequired`, exit 2 in the CLI).

Recording a message always happens in the store; only the job that types it goes through the
broker, and the job opens the store with the store URL (``workers/delivery.py``).
"""

from __future__ import annotations

import redis

from distributor.errors import DeliveryBrokerRequired
from distributor.settings import Settings
from distributor.store.connect import SyncRedis, redact_url, redis_from_url, url_kind


def delivery_url(settings: Settings) -> str:
    """The URL of the delivery broker, or :class:`DeliveryBrokerRequired` (one line)."""
    if settings.delivery_redis_url:
        if url_kind(settings.delivery_redis_url) == "cluster":
            raise DeliveryBrokerRequired(
                f"SWARMQUEUE_DELIVERY_REDIS_URL {redact_url(settings.delivery_redis_url)!r}"
                " is a Redis Cluster; the delivery queues (RQ) need one Redis or a Sentinel:"
                " use redis://, rediss://, unix:// or redis+sentinel://"
            )
        return settings.delivery_redis_url
    if url_kind(settings.redis_url) == "cluster":
        raise DeliveryBrokerRequired(
            "the store is a Redis Cluster: set SWARMQUEUE_DELIVERY_REDIS_URL to one Redis or a"
            " Sentinel (redis://... or redis+sentinel://...) for the delivery queues, which"
            " RQ cannot keep on a cluster"
        )
    return settings.redis_url


def separate_broker(settings: Settings) -> bool:
    """Whether the delivery broker is another Redis than the store."""
    return bool(settings.delivery_redis_url) and settings.delivery_redis_url != settings.redis_url


def broker_client(settings: Settings, store: SyncRedis | None = None) -> redis.Redis:
    """A blocking client of the delivery broker: ``store`` itself when the broker is the store
    (and ``store`` is one Redis), else a new client (:class:`DeliveryBrokerRequired` when there
    is no usable broker)."""
    url = delivery_url(settings)
    if isinstance(store, redis.Redis) and not separate_broker(settings):
        return store
    client = redis_from_url(url, settings.redis_retries)
    assert isinstance(client, redis.Redis)  # delivery_url never returns a cluster URL
    return client

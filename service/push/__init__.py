"""Push ingest: Tributary as a WebSub *subscriber* of publishers' hubs (the pure parts).

``discovery`` (where the hub is), ``protocol`` (the wire: requests, verification of intent,
signatures, fat or thin pings) and ``lifecycle`` (when to subscribe, renew, fall back, leave).
The callback endpoint is ``service/web/push_endpoint.py``; the worker side is ``workers/push/``;
the subscription's Redis side is ``service/store/push_state.py``.
"""

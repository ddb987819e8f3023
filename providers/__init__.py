"""Sans-I/O provider adapters: pure build/parse functions over plain values.

Adapters never import httpx, celery, redis, sessions or boto, never read the clock or the
environment, and never see credentials (the relay client adds the key).
"""

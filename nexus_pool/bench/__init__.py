"""The benchmark: ``python -m nexus_pool.bench`` (see ``__main__.py``)."""

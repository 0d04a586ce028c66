"""The benchmark of the SSO (``python -m bench``): see ``bench/README.md`` and :mod:`bench.run`."""

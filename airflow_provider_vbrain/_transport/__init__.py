"""The two transports: send what the core asks, sleep when it says, classify what went wrong.

``sync`` (requests, with ``deadline`` bounding a whole request) for workers, ``aio`` (aiohttp) for
the triggerer; ``multipart`` and ``sink`` stream uploads from and downloads to files. They import
the core and the connection's settings, never Airflow.
"""

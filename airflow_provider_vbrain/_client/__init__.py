"""The I/O-free client core: what the VBrain API is and how a call to it goes.

Building requests, the retry rule, redacting the key, reading answers into values or typed errors,
the wait on a job and a failed job's log tail. Nothing here sends, sleeps or reads a connection:
the transports (:mod:`airflow_provider_vbrain._transport`) drive it. It imports no HTTP library and
no Airflow; of the package, only the value modules ``jobs`` and ``exceptions``.
"""

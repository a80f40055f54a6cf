"""Recorded answers of the service and the CLI (see :mod:`tests.recorded.record`)."""

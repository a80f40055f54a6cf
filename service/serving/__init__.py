"""Serving the model: the per-worker model host, shadow scoring, assess-and-record."""

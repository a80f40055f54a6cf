"""Serving the model: the per-worker model host, its facts, shadow scoring, assess-and-record."""

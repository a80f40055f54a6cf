"""Talking to the EHR: cards, orderables, prefetch, terminology."""

"""HTTP plumbing: deadlines, typed errors, headers, JSON, limits, logs, metrics, negotiation, outbound GET."""

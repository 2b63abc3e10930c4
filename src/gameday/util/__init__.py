"""Small shared helpers: ports, processes, retries, JSON-lines journals, redaction."""

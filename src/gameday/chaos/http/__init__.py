"""HTTP activities: service health and serving region through the global (GA / router) URLs."""

"""HTTP edge: the REST API, the Mini App's files, the webhook and /healthz."""

"""The REST API's routes: parse the request, call core, render JSON. Nothing else."""

"""HTTP views served by the worker (Faust web, aiohttp underneath); every URL is in routes.py."""

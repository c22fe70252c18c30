"""The HTTP routes, one module per domain; ``gateway/app.py`` includes them.

A route module parses the request, calls its domain's service functions and shapes the
answer; the domains themselves import nothing of the gateway."""

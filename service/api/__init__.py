"""The HTTP API: the app factory (``app.create_app(settings)``), dependencies, auth and limits,
errors, observability, typed request and response schemas, and one router per resource under
``routes/`` (the dashboard's page router among them; its assets are ``service/web``).

May import anything below it (``runtime`` and the layers under it, ``jobs``); never ``cli``.
Routes hold no queries: they call the store's repositories and the analytics functions.
"""

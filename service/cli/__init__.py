"""The ``radar`` command (Typer): thin over the same runtime and services as the API.

The top layer: may import every package of ``service``; nothing imports it.
"""

"""The HTTP job service (DESIGN §6).

Importing this package is cheap: ``schemas`` is plain pydantic so the HTTP client can share the
status model without pulling in the web framework; ``create_app`` lives in ``api.server``.
"""

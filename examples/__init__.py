"""Real example workloads: a PDF sales report, a CSV contact import, and small demo tasks.

``examples.app:app`` is the application ``make run`` serves; workers load it with
``conveyor worker --app examples.app:app``.
"""

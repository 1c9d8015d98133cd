"""ripen's domain: configuration, journeys, consent, scoring, handover and the store.

This package imports neither Prefect, FastAPI, Typer nor APScheduler; those live at the
edges (``flows/`` and ``ripen/``).
"""

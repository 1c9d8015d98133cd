"""ripen's edges: the command line (Typer), the HTTP API (FastAPI) and the scheduler."""

__version__ = "0.1.0"

"""The ``ripen`` command line: one module per command group, one error boundary.

Usage mistakes exit 2 with Click's message, user errors exit 1 with a plain message;
bugs exit 3 (their traceback in the error log)."""

from __future__ import annotations

import sys
import traceback

import click
from typer._click.exceptions import ClickException as TyperClickException
from typer.exceptions import Abort as TyperAbort
from typer.exceptions import Exit as TyperExit

from engine.errors import ConfigError, RipenError
from ripen.cli import (  # noqa: F401  (importing a group module registers its commands)
    configuration,
    journeys,
    leads,
    operations,
    reports,
    sales,
)
from ripen.cli._common import app, crash_log, plain_error

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: usage mistakes with Click's own message (exit 2), plain messages for user
    errors (exit 1), a log file for bugs (exit 3). Typer raises its bundled copy of Click's
    exceptions (``typer._click``), not ``click``'s: both are caught."""
    try:
        result = app(standalone_mode=False)
    except (click.exceptions.Abort, TyperAbort):
        plain_error("aborted")
        sys.exit(1)
    except (click.ClickException, TyperClickException) as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Exit, TyperExit) as exc:
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        count = len(exc.problems)
        plain_error(f"{exc.format()}\n{count} problem{'s' if count != 1 else ''} found")
        sys.exit(1)
    except RipenError as exc:
        plain_error(f"error: {exc}")
        sys.exit(1)
    except Exception:
        log_file = crash_log(traceback.format_exc())
        plain_error(f"ripen failed unexpectedly (a bug); details are in {log_file}")
        sys.exit(3)
    sys.exit(result if isinstance(result, int) else 0)

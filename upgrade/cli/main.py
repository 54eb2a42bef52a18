"""Entry point: the top-level group, lazy command loading, and error-to-exit-code mapping."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import MutableMapping
from typing import Any

import click

from upgrade import __version__
from upgrade.errors import UpgradeError
from upgrade.render import printable

#: command name -> "module:attribute"; modules are imported only when used
COMMANDS = {
    "plan": "upgrade.cli.plan_cmd:plan",
    "run": "upgrade.cli.run_cmd:run",
    "resume": "upgrade.cli.run_cmd:resume",
    "pause": "upgrade.cli.status_cmd:pause",
    "status": "upgrade.cli.status_cmd:status",
    "compat": "upgrade.cli.compat_cmd:compat",
    "sim": "upgrade.cli.sim_cmd:sim",
    "emulate": "upgrade.cli.emulate_cmd:emulate",
    "report": "upgrade.cli.report_cmd:report",
    "history": "upgrade.cli.report_cmd:history",
    "abort": "upgrade.cli.report_cmd:abort",
    "fleet": "upgrade.cli.fleet_cmd:fleet",
    "verify": "upgrade.cli.verify_cmd:verify",
    "journey": "upgrade.cli.journey_cmd:journey",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, keeping start-up fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None  # not built yet
            raise
        command: click.Command = getattr(module, attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UpgradeError as exc:
            message = printable(str(exc), newlines=True)  # names a manager reported, too
            click.echo(message if _is_located(exc) else f"error: {message}", err=True)
            ctx.exit(exc.exit_code)


def _is_located(exc: UpgradeError) -> bool:
    from upgrade.errors import FileError

    return isinstance(exc, FileError)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nsxt-upgrade")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Plan, run, pause and resume NSX-T 2.x upgrades under VMware PKS.

    Start with a dry run: `nsxt-upgrade plan PLAYBOOK` validates the playbook and
    inventory, checks the PKS / NSX-T / Ops Manager compatibility matrix and prints
    the ordered plan with estimated durations, changing nothing anywhere.

    \b
    Exit codes:
      0  done, or plan / check OK
      1  failed or aborted
      2  bad invocation or invalid input file (FILE:LINE:COL: message)
      3  paused, waiting for an operator
      4  refused: incompatible versions or blocking pre-check findings
      5  another runner holds the state directory's lock
    """
    if ctx.invoked_subcommand not in LOGS_WHEN_CONNECTING:
        log_to_stderr()


#: commands that set up logging themselves, only when they contact a system: `plan` of a
#: simulated inventory logs nothing, and structlog's import is a tenth of its start-up
LOGS_WHEN_CONNECTING = frozenset({"plan"})


def log_to_stderr() -> None:
    """Adapters log warnings and errors to stderr: stdout is the command's output (one
    JSON document with --format json) and the run's progress display. Calling it again
    changes nothing."""
    import logging

    import structlog

    processors = structlog.get_config()["processors"]
    if _printable_values not in processors:  # a manager's error text may hold escapes
        processors = [_printable_values, *processors]
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr),
                        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        processors=processors)


def _printable_values(_logger: Any, _method: str,
                      event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: control characters in string values shown as escapes."""
    return {key: printable(value) if isinstance(value, str) else value
            for key, value in event.items()}


_log_to_stderr = log_to_stderr

#: set by a command whose process holds nothing to close or flush but its standard
#: streams once it is done (``plan``): :func:`main` then exits without tearing down the
#: objects it made (a 100,000-host plan's are millions, 0.15 s to free; issue 23 item 4)
_quick_exit: list[bool] = []


def exit_quickly_when_done() -> None:
    """Let :func:`main` end the process without freeing its objects one by one (for
    commands that closed every file and connection they opened before returning)."""
    _quick_exit.append(True)


def main() -> None:
    """Run the CLI; exit codes as in the group's help."""
    try:
        cli(prog_name="nsxt-upgrade")
    except SystemExit as exc:
        if _quick_exit and (exc.code is None or isinstance(exc.code, int)):
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):
                raise exc from None  # as Python would report it on its own way out
            os._exit(exc.code or 0)
        raise
    sys.exit(0)  # pragma: no cover - click exits itself

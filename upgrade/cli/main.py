"""Entry point: the top-level group, lazy command loading, and error-to-exit-code mapping."""

from __future__ import annotations

import importlib
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
def cli() -> None:
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
    _log_to_stderr()


def _log_to_stderr() -> None:
    """Adapters log warnings and errors to stderr: stdout is the command's output (one
    JSON document with --format json) and the run's progress display."""
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


def main() -> None:
    """Run the CLI; exit codes as in the group's help."""
    cli(prog_name="nsxt-upgrade")
    sys.exit(0)  # pragma: no cover - click exits itself

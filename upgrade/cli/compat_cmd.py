"""``nsxt-upgrade compat``: check a combination, find an upgrade path, print the matrix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from upgrade.compat.checking import check
from upgrade.compat.load import load_with_overlay
from upgrade.compat.matrix import Product
from upgrade.compat.path import Goal, State, find_path
from upgrade.compat.render import (
    check_text,
    matrix_json,
    matrix_markdown,
    matrix_text,
    path_text,
)
from upgrade.core.versions import Version
from upgrade.errors import InputError

_FORMAT = click.Choice(["text", "json"])
F = TypeVar("F", bound=Callable[..., Any])


def _matrix_option(func: F) -> F:
    return click.option(
        "--matrix",
        "site",
        type=click.Path(path_type=Path, dir_okay=False),
        metavar="FILE",
        help="a site's own rows and hops (YAML, the shape of the built-in data), laid over "
        "the built-in data",
    )(func)


def _strict_option(func: F) -> F:
    return click.option(
        "--strict",
        is_flag=True,
        help="refuse (exit 4) wherever vendor documents disagree, instead of warning",
    )(func)


def _version(text: str, what: str) -> Version:
    try:
        return Version.parse(text)
    except ValueError as exc:
        raise InputError(f"{what}: {exc}") from None


def _echo_json(doc: object) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def _state_arg(text: str, option: str, required: tuple[Product, ...]) -> dict[Product, Version]:
    """Parse ``pks=1.1.4,nsxt=2.1,opsman=2.1``."""
    names = {p.value: p for p in Product}
    found: dict[Product, Version] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in names:
            raise InputError(
                f"{option}: expected product=version pairs such as pks=1.2,nsxt=2.3,opsman=2.3.1; "
                f"got {part!r}"
            )
        if names[key] in found:
            raise InputError(f"{option}: {key} given twice")
        found[names[key]] = _version(value.strip(), f"{option} {key}")
    missing = [p.value for p in required if p not in found]
    if missing:
        raise InputError(f"{option}: missing {', '.join(missing)}")
    return found


@click.group()
def compat() -> None:
    """The PKS / NSX-T / Ops Manager compatibility matrix, with a source for every row.

    \b
    Exit codes: 0 supported / path found, 4 not supported / no path,
    2 unknown or malformed version.
    """


@compat.command("check")
@click.option("--pks", "pks", required=True, metavar="V", help="PKS version, e.g. 1.2.0")
@click.option("--nsxt", "nsxt", required=True, metavar="V", help="NSX-T version, e.g. 2.3.0.0")
@click.option("--opsman", "opsman", metavar="V", help="Ops Manager version, e.g. 2.3.1")
@click.option("--format", "fmt", type=_FORMAT, default="text", show_default=True)
@_matrix_option
@_strict_option
@click.pass_context
def check_cmd(
    ctx: click.Context,
    pks: str,
    nsxt: str,
    opsman: str | None,
    fmt: str,
    site: Path | None,
    strict: bool,
) -> None:
    """Is this combination supported? Exit 0 if so, 4 if not.

    Supported with a warning where vendor documents disagree (the release's own
    notes decide); --strict refuses then. A withdrawn PKS release is refused.
    """
    matrix = load_with_overlay(site)
    result = check(
        _version(pks, "--pks"),
        _version(nsxt, "--nsxt"),
        None if opsman is None else _version(opsman, "--opsman"),
        matrix,
        strict,
    )
    if fmt == "json":
        _echo_json(result.to_json())
    else:
        click.echo(check_text(result), nl=False)
    ctx.exit(0 if result.supported else 4)


@compat.command("path")
@click.option(
    "--from", "from_", required=True, metavar="pks=V,nsxt=V,opsman=V", help="what runs now"
)
@click.option(
    "--to",
    "to",
    required=True,
    metavar="pks=V,nsxt=V[,opsman=V]",
    help="where to arrive; 2.3 means any 2.3.x",
)
@click.option("--format", "fmt", type=_FORMAT, default="text", show_default=True)
@_matrix_option
@_strict_option
@click.pass_context
def path_cmd(
    ctx: click.Context, from_: str, to: str, fmt: str, site: Path | None, strict: bool
) -> None:
    """The shortest sequence of single-product upgrades, every step supported.

    Each step upgrades one product by a supported direct upgrade to a concrete
    release, and the matrix supports the state after every step. Exit 0 when
    a path exists, 4 when none does (the output names the blocking constraint).
    Every step names its sources; Ops Manager goes one minor version at a time
    unless no such path exists (then the skipping step carries a warning).
    """
    start_v = _state_arg(from_, "--from", tuple(Product))
    goal_v = _state_arg(to, "--to", (Product.PKS, Product.NSXT))
    matrix = load_with_overlay(site)
    for versions in (start_v, goal_v):
        for product, version in versions.items():
            matrix.require_known(product, version)
    start = State(start_v[Product.PKS], start_v[Product.NSXT], start_v[Product.OPSMAN])
    goal = Goal(goal_v[Product.PKS], goal_v[Product.NSXT], goal_v.get(Product.OPSMAN))
    result = find_path(matrix, start, goal, strict)
    if fmt == "json":
        _echo_json(result.to_json())
    else:
        click.echo(path_text(result), nl=False)
    ctx.exit(0 if result.found else 4)


@compat.command("matrix")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@_matrix_option
def matrix_cmd(fmt: str, site: Path | None) -> None:
    """The whole matrix, one row per PKS release, with sources and where each row came from."""
    matrix = load_with_overlay(site)
    if fmt == "json":
        _echo_json(matrix_json(matrix))
    elif fmt == "markdown":
        click.echo(matrix_markdown(matrix), nl=False)
    else:
        click.echo(matrix_text(matrix), nl=False)

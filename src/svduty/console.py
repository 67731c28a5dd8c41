"""What every command-line module shares: the consoles, errors for people, and opening the
partnership folder named on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from svduty.partnership import Partnership, PartnershipError

console = Console()
err = Console(stderr=True)

DirArg = Annotated[Path, typer.Argument(help="The partnership folder.")]


def fail(message: str) -> NoReturn:
    """Print an error a person can act on and exit with status 1."""
    err.print(f"[bold red]Error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def open_partnership(root: Path) -> Partnership:
    """The partnership at `root`, or a clear error if the folder is not one."""
    try:
        return Partnership(root)
    except PartnershipError as exc:
        fail(str(exc))



"""`gridrisk <kind> import FILE` for every feature kind: the bulk import, a progress bar, a row report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from gridrisk.registry.catalog import KINDS
from gridrisk.registry.kind import FeatureKind
from gridrisk.vocabulary import COORDINATE_SYSTEMS


def kind_apps(connect: Callable, progress: Callable, fail: Callable, console) -> dict[str, typer.Typer]:
    """One sub-command group per kind, named by its URL path (`risk-sources`), holding `import`.

    CONNECT, PROGRESS and FAIL are the CLI's database connection, progress bar and error exit.
    """
    return {kind.path.strip("/"): _app(kind, connect, progress, fail, console) for kind in KINDS.values()}


def _app(kind: FeatureKind, connect: Callable, progress: Callable, fail: Callable, console) -> typer.Typer:
    app = typer.Typer(help=f"{kind.plural.capitalize()}: the registry's bulk import.", no_args_is_help=True)

    @app.command("import")
    def import_file_cmd(
        file: Annotated[Path, typer.Argument(help="CSV, Excel (.xlsx), GeoJSON or GeoPackage file")],
        fmt: Annotated[
            str | None, typer.Option("--format", help="csv, xlsx, geojson or gpkg (default: from the name)")
        ] = None,
        actor: Annotated[str, typer.Option(help="Recorded as the author of the changes")] = "cli",
        dry_run: Annotated[
            bool, typer.Option(help="Check every row as the import would, report, and write nothing")
        ] = False,
        coordinates: Annotated[
            str,
            typer.Option(help="The file's lon/lat: WGS84 (GPS), GCJ-02 (Amap, Tencent) or BD-09 (Baidu)"),
        ] = "WGS84",
    ) -> None:
        from gridrisk.imports.bulk_import import ImportFormatError, iter_error_lines
        from gridrisk.registry.bulk import import_file
        from gridrisk.settings import Settings

        if not file.exists() or file.is_dir():
            raise fail(f"no file {file}")
        if coordinates not in COORDINATE_SYSTEMS:
            raise fail(f"unknown --coordinates {coordinates}", f"give one of {', '.join(COORDINATE_SYSTEMS)}")
        with connect(Settings()) as conn, progress() as bar:
            try:
                # A dry run's import is a savepoint inside a transaction that is rolled back.
                with conn.transaction(force_rollback=dry_run):
                    result = import_file(
                        conn, kind, file, fmt=fmt, actor=actor, coordinates=coordinates, progress=bar
                    )
            except ImportFormatError as exc:
                hint = "name the file .csv, .xlsx, .geojson or .gpkg, or pass --format"
                raise fail(str(exc), hint) from exc
            if not result.ok:
                conn.rollback()
        for line in iter_error_lines(result):
            console.print(line, markup=False)
        if not result.ok:
            raise fail(result.message, "fix the rows listed above and import the file again")
        if dry_run:
            message = result.message.rstrip(".")
            console.print(f"[green]dry run: {message}; nothing was written[/green] ({result.seconds:.1f} s)")
        else:
            console.print(f"[green]{result.message}[/green] ({result.seconds:.1f} s)")

    import_file_cmd.__doc__ = (
        f"Upsert {kind.plural} by {kind.key} from a file: every row or none, with a row report"
        + ("; the map is current at commit." if kind.colours_cells else ".")
    )
    return app

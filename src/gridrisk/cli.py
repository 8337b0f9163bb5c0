"""The `gridrisk` command: serve, migrate, manage keys, load data, import grids, build the demo city."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridrisk.registry.cli import kind_apps
from gridrisk.settings import Settings

app = typer.Typer(help="gridrisk: a city's risk grids and four-colour risk map.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
data_app = typer.Typer(help="Reference data.", no_args_is_help=True)
grids_app = typer.Typer(help="Grid layers.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo city.", no_args_is_help=True)
riskmap_app = typer.Typer(help="The four-colour risk map.", no_args_is_help=True)
events_app = typer.Typer(help="The live-event outbox.", no_args_is_help=True)
city_app = typer.Typer(help="The city: its districts, name and metric CRS.", no_args_is_help=True)
warnings_app = typer.Typer(help="Targeted warnings and their work orders.", no_args_is_help=True)
for sub, name in (
    (warnings_app, "warnings"),
    (city_app, "city"),
    (db_app, "db"),
    (keys_app, "keys"),
    (data_app, "data"),
    (grids_app, "grids"),
    (demo_app, "demo"),
    (riskmap_app, "riskmap"),
    (events_app, "events"),
):
    app.add_typer(sub, name=name)

console = Console(stderr=True)


def _fail(message: str, hint: str | None = None) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    if hint:
        console.print(f"[yellow]next:[/yellow] {hint}")
    return typer.Exit(code=1)


@contextlib.contextmanager
def _connect(settings: Settings):
    """A sync connection for CLI work, with a helpful message when the database is not there."""
    try:
        conn = psycopg.connect(settings.database_url, autocommit=False)
    except psycopg.OperationalError as exc:
        raise _fail(
            f"cannot reach the database at {settings.database_url}: {str(exc).strip().splitlines()[0]}",
            "start it with `make db` (private cluster) or set GRIDRISK_DATABASE_URL",
        ) from exc
    with conn:
        yield conn


@contextlib.contextmanager
def _progress():
    """A rich progress bar whose update callback matches spatial.layers.Progress."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        yield update


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default GRIDRISK_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default GRIDRISK_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    settings = Settings()
    uvicorn.run(
        "gridrisk.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        reload=reload,
        log_level=settings.log_level,
        proxy_headers=True,
        # Open SSE streams would otherwise keep a shutdown waiting forever.
        timeout_graceful_shutdown=5,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply migrations (default: up to the newest)."""
    from gridrisk.db import migrate

    settings = Settings()
    try:
        migrate.upgrade(settings, revision)
    except Exception as exc:
        if "connect" in str(exc).lower():
            raise _fail(f"cannot reach the database: {exc.__class__.__name__}", "run `make db`") from exc
        raise
    console.print(f"database at revision [bold]{migrate.current_revision(settings)}[/bold]")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, or 'base'")] = "-1") -> None:
    """Revert migrations (default: one step)."""
    from gridrisk.db import migrate

    settings = Settings()
    migrate.downgrade(settings, revision)
    console.print(f"database at revision [bold]{migrate.current_revision(settings)}[/bold]")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision and the newest one the code ships."""
    from gridrisk.db import migrate

    settings = Settings()
    print(f"current: {migrate.current_revision(settings)}  head: {migrate.head_revision(settings)}")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who holds the key")],
    role: Annotated[str, typer.Option(help="admin | operator | worker | viewer")],
    cell: Annotated[
        list[str] | None,
        typer.Option(
            help="A cell its holder works in, LAYER:CODE (repeat it); a worker key sees only these cells' "
            "work orders"
        ),
    ] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from gridrisk.api_keys import create_key
    from gridrisk.db.sql_files import sql

    cells = []
    for ref in cell or []:
        layer, sep, code = ref.partition(":")
        if not sep or not layer or not code:
            raise _fail(f"--cell {ref!r} is not LAYER:CODE", "e.g. --cell comprehensive:CMP-320115-0001")
        cells.append((layer, code))
    with _connect(Settings()) as conn:
        try:
            key_id, key = create_key(conn, name, role)
        except ValueError as exc:
            raise _fail(str(exc)) from exc
        if cells:
            refs = {"layers": [c[0] for c in cells], "codes": [c[1] for c in cells]}
            rows = conn.execute(sql("work_order_unknown_cells"), refs).fetchall()
            unknown = [f"{layer}:{code}" for layer, code in rows]
            if unknown:
                raise _fail(f"no such cell(s): {', '.join(unknown)}; no key was created", "see GET /layers")
            conn.execute(sql("work_order_key_cells"), {"key_id": key_id, **refs})
    console.print(f"key {key_id} for [bold]{name}[/bold] ({role}); it is shown only now:")
    if cells:
        console.print(f"linked to {len(cells)} cell(s): {', '.join(f'{a}:{b}' for a, b in cells)}")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never the keys themselves)."""
    with _connect(Settings()) as conn:
        rows = conn.execute(
            "SELECT id, name, role, prefix, created_at, revoked_at FROM api_keys ORDER BY id"
        ).fetchall()
    table = Table("id", "name", "role", "prefix", "created", "revoked")
    for r in rows:
        table.add_row(*(str(v) if v is not None else "" for v in r))
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Key id from `keys list`")]) -> None:
    """Revoke a key; requests with it answer 401 from now on."""
    with _connect(Settings()) as conn:
        n = conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (key_id,)
        ).rowcount
    if not n:
        raise _fail(f"no active key with id {key_id}", "see `gridrisk keys list`")
    console.print(f"key {key_id} revoked")


Coordinates = Annotated[
    str | None,
    typer.Option(
        "--coordinates",
        help="What the file's lon/lat are: WGS84 (also CGCS2000), GCJ-02 or BD-09 (Chinese web maps)",
    ),
]
MetricCrs = Annotated[
    str | None,
    typer.Option(
        "--metric-crs",
        help="EPSG code of a projected CRS in metres, or 'auto': the CGCS2000 3° zone nearest the city",
    ),
]


@data_app.command("load-districts")
def load_districts_cmd(
    path: Annotated[
        Path | None, typer.Argument(help="District GeoJSON (default data/nanjing-districts.geojson)")
    ] = None,
    wgs84: Annotated[bool, typer.Option("--wgs84", help="The file is already WGS 84 (not GCJ-02)")] = False,
    only: Annotated[list[str] | None, typer.Option(help="Load only these district codes")] = None,
) -> None:
    """Load the district outlines (converting GCJ-02 to WGS 84) as the `district` layer."""
    from gridrisk.services.districts import load_districts

    with _connect(Settings()) as conn, _progress() as progress:
        coordinates = "WGS84" if wgs84 else "GCJ-02"
        result = load_districts(conn, path, coordinates=coordinates, progress=progress, codes=only)
    console.print(f"loaded {result.cells} districts in {result.seconds:.1f} s")


@city_app.command("init")
def city_init(
    path: Annotated[Path, typer.Argument(help="District outlines: GeoJSON, GeoPackage or Shapefile")],
    name: Annotated[str, typer.Option(help="The city's name, as people read it (e.g. 成都市)")],
    name_en: Annotated[str | None, typer.Option(help="The city's name in English")] = None,
    coordinates: Coordinates = None,
    metric_crs: MetricCrs = None,
) -> None:
    """Set up a city: its district outlines (fields code, name), its name and its metric CRS."""
    from gridrisk.geometry.metric_crs import MetricCRSError
    from gridrisk.services.city import update_profile
    from gridrisk.services.districts import load_districts
    from gridrisk.vocabulary import COORDINATE_SYSTEMS

    if not path.exists():
        raise _fail(f"no file {path}")
    if coordinates is not None and coordinates not in COORDINATE_SYSTEMS:
        raise _fail(f"unknown --coordinates {coordinates}", f"give one of {', '.join(COORDINATE_SYSTEMS)}")
    try:
        with _connect(Settings()) as conn, _progress() as progress:
            if metric_crs is not None:  # before the districts, which are then measured in it
                update_profile(conn, **_metric_choice(metric_crs), progress=progress)
            result = load_districts(
                conn, path, coordinates=coordinates or "WGS84", progress=progress, city_name=name,
                city_name_en=name_en,
            )  # fmt: skip
            _print_profile(conn)
    except (MetricCRSError, ValueError) as exc:
        raise _fail(str(exc), "see `gridrisk city init --help`") from exc
    console.print(f"loaded {result.cells} districts; next: `gridrisk grids import <layer> <file>`")


@city_app.command("show")
def city_show() -> None:
    """Print the city profile: names and the metric CRS areas are measured in."""
    with _connect(Settings()) as conn:
        _print_profile(conn)


@city_app.command("set")
def city_set(
    name: Annotated[str | None, typer.Option(help="The city's name")] = None,
    name_en: Annotated[str | None, typer.Option(help="The city's name in English")] = None,
    metric_crs: MetricCrs = None,
) -> None:
    """Change the city's names or metric CRS (a new CRS re-measures every stored area)."""
    from gridrisk.geometry.metric_crs import MetricCRSError
    from gridrisk.services.city import update_profile

    try:
        with _connect(Settings()) as conn, _progress() as progress:
            choice = _metric_choice(metric_crs) if metric_crs is not None else {}
            update_profile(conn, name=name, name_en=name_en, **choice, progress=progress)
            _print_profile(conn)
    except MetricCRSError as exc:
        raise _fail(str(exc), "give a projected CRS in metres, e.g. --metric-crs EPSG:4544, or auto") from exc


def _metric_choice(text: str) -> dict:
    from gridrisk.geometry.metric_crs import parse_epsg

    return {"auto": True} if text.strip().lower() == "auto" else {"metric_epsg": parse_epsg(text)}


def _print_profile(conn) -> None:
    from gridrisk.services.city import read_profile

    profile = read_profile(conn)
    how = "chosen from the districts' centre" if profile.metric_crs_auto else "set explicitly"
    english = f" ({profile.name_en})" if profile.name_en else ""
    console.print(f"city: {profile.name}{english}; metric CRS {profile.metric.srs}, {how}")


@grids_app.command("import")
def grids_import(
    layer: Annotated[
        str, typer.Argument(help="comprehensive | emergency | safety | street | community | district")
    ],
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, zipped Shapefile or GeoParquet")],
    code_field: Annotated[str | None, typer.Option(help="Field holding the cell code")] = None,
    name_field: Annotated[str | None, typer.Option(help="Field holding the cell name")] = None,
    encoding: Annotated[
        str | None,
        typer.Option(help="A shapefile's text encoding (e.g. GBK); default: its .cpg, else UTF-8 or GB18030"),
    ] = None,
    repair: Annotated[bool, typer.Option(help="Repair invalid geometries instead of rejecting them")] = False,
    allow_gaps: Annotated[bool, typer.Option(help="Accept a grid that covers only part of the city")] = False,
    dry_run: Annotated[bool, typer.Option(help="Check the file and print the report; write nothing")] = False,
) -> None:
    """Validate a layer file and, when it has no errors, replace the layer atomically."""
    from gridrisk.imports.grid_import import import_layer_file, print_report

    if not file.exists():
        raise _fail(f"no file {file}")
    with _progress() as progress:
        outcome = import_layer_file(
            Settings().database_url,
            layer,
            file,
            code_field=code_field,
            name_field=name_field,
            encoding=encoding,
            repair=repair,
            allow_gaps=allow_gaps,
            source=file.name,
            progress=progress,
            dry_run=dry_run,
        )
    print_report(outcome, Console())
    if not outcome.ok:
        raise _fail(outcome.message, "fix the errors listed above (or use --repair for invalid geometries)")


@demo_app.command("build")
def demo_build(
    seed: Annotated[int, typer.Option(help="Random seed; the same seed builds the same city")] = 42,
    districts: Annotated[
        list[str] | None, typer.Option(help="Only these district codes (small test city)")
    ] = None,
    scale: Annotated[
        float,
        typer.Option(
            help="Below 1: that fraction of Nanjing's cell counts (a small test city). 2 to 13: the whole"
            " demo city (registries too) copied that many times side by side, as the cities of a province",
            min=0.001,
            max=13,
        ),
    ] = 1.0,
) -> None:
    """Build the demo Nanjing: districts and the three grids at real counts, with workers."""
    from gridrisk.demo.build import build_demo, ensure_demo
    from gridrisk.demo.province import build_province

    if scale > 1:
        if scale != int(scale) or districts:
            raise _fail(
                f"--scale {scale:g} copies the whole city", "give a whole number of copies, no --districts"
            )
        with _connect(Settings()) as conn, _progress() as progress:
            for line in ensure_demo(conn, seed=seed, progress=progress):
                console.print(line)
            summary = build_province(conn, int(scale), progress=progress)
        console.print(f"province of {int(scale)} cities: {summary}")
        return
    with _connect(Settings()) as conn, _progress() as progress:
        summary = build_demo(
            conn, seed=seed, district_codes=districts, scale=scale, progress=progress, hazards=True
        )
    for layer, info in summary.items():
        console.print(f"{layer}: {info}")


@demo_app.command("ensure")
def demo_ensure(seed: Annotated[int, typer.Option(help="Seed for a first build")] = 42) -> None:
    """Build whatever part of the demo city is missing (districts, grids, registries); idempotent."""
    from gridrisk.demo.build import ensure_demo

    with _connect(Settings()) as conn, _progress() as progress:
        for line in ensure_demo(conn, seed=seed, progress=progress):
            console.print(line)


@riskmap_app.command("recompute")
def riskmap_recompute() -> None:
    """Reassign every risk item to every layer's cells and recolour the whole map from scratch."""
    from gridrisk.services.risk_map import recompute_all

    with _connect(Settings()) as conn, _progress() as progress:
        result = recompute_all(conn, progress=progress)
    changed = sum(result.layers.values())
    console.print(
        f"recomputed {len(result.layers)} layers in {result.seconds:.1f} s; {changed} cells changed colour"
    )


@riskmap_app.command("verify")
def riskmap_verify() -> None:
    """Compare the maintained map with a from-scratch recompute; exit 1 on any difference."""
    from gridrisk.services.risk_map import verify

    with _connect(Settings()) as conn:
        problems = verify(conn)
    if problems:
        for p in problems[:50]:
            console.print(f"[red]{p['problem']}[/red] {p['layer']} {p['code']} source={p['source_id']}")
        raise _fail(
            f"{len(problems)} difference(s) between the map and a recompute",
            "run `gridrisk riskmap recompute`",
        )
    console.print("[green]the map equals a from-scratch recompute[/green]")


@warnings_app.command("expire")
def warnings_expire() -> None:
    """End the open orders of expired warnings (releasing their bookings); announce overdue orders."""
    from gridrisk.services.warning_expiry import expire_orders

    with _connect(Settings()) as conn:
        done = expire_orders(conn)
    console.print(
        f"expired {done['orders']} order(s) of {done['warnings']} warning(s); "
        f"{done['overdue']} order(s) newly overdue"
    )


@events_app.command("prune")
def events_prune(keep_days: Annotated[float, typer.Option(help="Keep events newer than this")] = 7) -> None:
    """Delete live events older than KEEP_DAYS (clients resuming from before get a replay_gap notice)."""
    from gridrisk.events.hub import prune_events

    with _connect(Settings()) as conn:
        n = prune_events(conn, keep_days)
    console.print(f"pruned {n} event(s) older than {keep_days:g} days")


# Each feature kind's commands (`gridrisk risk-sources import FILE`, ...), derived from the registry.
KIND_APPS = kind_apps(_connect, _progress, _fail, console)
for _name, _sub in KIND_APPS.items():
    app.add_typer(_sub, name=_name)
shelters_app = KIND_APPS["shelters"]
shelters_app.info.help = "Shelters: coverage analysis and bulk import."


@shelters_app.command("coverage")
def shelters_coverage(
    layer: Annotated[str, typer.Option(help="The grid layer to analyse")] = "comprehensive",
    top: Annotated[int, typer.Option(help="How many of the worst cells to list", min=0)] = 20,
) -> None:
    """Shelter coverage of a grid: city and district totals, then the cells with the largest shortfall."""
    from gridrisk.services.shelters import coverage, print_coverage

    with _connect(Settings()) as conn:
        try:
            report = coverage(conn, layer)
        except LookupError as exc:
            raise _fail(str(exc), "pass --layer with one of the layers listed") from exc
    print_coverage(report, Console(), top=top)


@app.command()
def backup(file: Annotated[Path, typer.Argument(help="Where to write the backup (custom format)")]) -> None:
    """Back up the whole database (pg_dump custom format) to FILE, with progress."""
    from gridrisk.services.backup import BackupError
    from gridrisk.services.backup import backup as run_backup

    try:
        with _progress() as progress:
            result = run_backup(Settings().database_url, file, progress=progress)
    except BackupError as exc:
        raise _fail(str(exc)) from exc
    size = f"{result.bytes / 2**20:.1f} MiB"
    console.print(f"backed up {result.tables} tables to {result.path} ({size}) in {result.seconds:.1f} s")


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="A backup written by `gridrisk backup`")],
    clean: Annotated[bool, typer.Option(help="Replace what the target database holds")] = False,
) -> None:
    """Restore FILE into the database (one transaction); then check it with `gridrisk riskmap verify`."""
    from gridrisk.services.backup import BackupError
    from gridrisk.services.backup import restore as run_restore

    try:
        with _progress() as progress:
            tables = run_restore(Settings().database_url, file, clean=clean, progress=progress)
    except BackupError as exc:
        raise _fail(str(exc), "create an empty database, or pass --clean") from exc
    console.print(f"restored {tables} tables from {file}; next: `gridrisk riskmap verify`")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())

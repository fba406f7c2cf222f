"""``tidings bench``: a load generator that speaks the real protocol and checks every delivery.

Use :func:`run` from code (``await run("fanout", Options(spawn=True))``) or the Typer
sub-app :data:`tidings.bench.cli.bench_app` mounted as ``tidings bench``.
"""

from tidings.bench.runner import SCENARIOS, Options, run

__all__ = ["SCENARIOS", "Options", "run"]

"""``swarmqueue dashboard`` serves the web dashboard; ``swarmqueue metrics`` prints /metrics."""

from __future__ import annotations

import click

from distributor.cli.app import CliContext
from distributor.cli.output import emit, json_option


@click.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8765, show_default=True, help="Port to listen on.")
@click.option(
    "--token",
    envvar="SWARMQUEUE_DASHBOARD_TOKEN",
    help="Require this token on every request (at least 16 characters) [env "
    "SWARMQUEUE_DASHBOARD_TOKEN]; needed to listen on any non-loopback address.",
)
@click.pass_obj
def dashboard(obj: CliContext, host: str, port: int, token: str | None) -> None:
    """Serve the read-only web dashboard of every swarm in this Redis (Ctrl-C stops it).

    Pages: swarms, a swarm (progress, chart, DAG, retries, failures), a task, agents, workers,
    messages and the live event tail; /metrics for Prometheus. Pages update live.
    """
    from distributor.dashboard.server import DashboardServer, config, url_of

    server = DashboardServer(config(obj.settings, host, port, token))
    click.echo(f"dashboard: {url_of(host, port)}" + (" (token required)" if token else ""))
    server.run()


@click.command("metrics")
@json_option
@click.pass_obj
def metrics(obj: CliContext, as_json: bool) -> None:
    """Print every swarm's metrics once, as /metrics shows them (Prometheus text format)."""
    from prometheus_client.parser import text_string_to_metric_families

    from distributor.dashboard.metrics import registry_for, render
    from distributor.dashboard.views import Reader

    text = render(registry_for(Reader(obj.queue.redis, obj.settings))).decode()
    samples = [
        {"name": s.name, "labels": s.labels, "value": s.value}
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]
    emit(as_json, samples, text.rstrip("\n"))


COMMANDS = [dashboard, metrics]

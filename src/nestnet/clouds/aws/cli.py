"""``nestnet aws``: diff/apply the EC2 side, export Terraform/AWS CLI, run the emulated EC2 endpoint."""

from __future__ import annotations

import sys

import click

from ...cli.output import UserPath


@click.group("aws")
def aws() -> None:
    """Reconcile ENI prefixes, routes and source/destination checks in EC2; export them.

    Credentials and endpoint come from AWS's default chain (environment, ~/.aws, instance
    role); AWS_ENDPOINT_URL (or the config file's endpoint_url) points at an emulator and
    AWS_CA_BUNDLE at its CA. The Region is the spec's aws.region.

    Exit codes: 0 nothing to do / done; 1 changes pending (diff) or EC2 refused a change;
    2 bad input, or the spec does not match EC2, nothing written; 3 EC2 could not be reached,
    authorized or brought to the plan in time.
    """


@aws.command()
@click.option("--listen", default="127.0.0.1:8444", show_default=True, help="IPv4:PORT (port 0: any free port).")
@click.option("--state-dir", type=UserPath("dir"), required=True)
@click.option("--inject", "inject", multiple=True, metavar="KIND:RATE",
              help="Repeatable. KIND: throttle (503 RequestLimitExceeded), unavailable (503 Unavailable), internal "
              "(500 InternalError), writer (another writer adds a route or an address just before a write). "
              "RATE: share of requests, 0..1.")
@click.option("--inject-seed", default=0, show_default=True, type=int, help="Seed of the injections' random draws.")
@click.option("--max-routes", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="Routes per route table (EC2's default quota is 50, adjustable up to 1,000).")
def emulator(listen: str, state_dir: str, inject: tuple[str, ...], inject_seed: int, max_routes: int) -> None:
    """Run an emulated EC2 endpoint: moto's server behind HTTPS, with ENI prefixes, EC2's limits
    and route rules (its CA in STATE_DIR/ca.pem, its URL in STATE_DIR/endpoint).

    GET /_emulator/stats counts requests and injections; POST /_emulator/inject
    {"rates": {"throttle": 0.5}, "seed": 1} changes the injections while it runs; POST
    /_emulator/reset forgets everything. State lives in memory, as long as the emulator runs.
    """
    from ...clouds.azure.emulator import parse_listen
    from ...errors import UsageError
    from .emulator import Emulator, Injector, parse_inject

    host, port = parse_listen(listen)
    rates = dict(parse_inject(v) for v in inject)
    try:
        em = Emulator(state_dir, host, port, Injector(rates, inject_seed), max_routes)
    except OSError as exc:
        raise UsageError(f"--listen {listen}: {exc.strerror or exc}") from None
    click.echo(f"EC2 emulator on {em.url} (CA {em.ca_pem}); use AWS_ENDPOINT_URL={em.url} "
               f"AWS_CA_BUNDLE={em.ca_pem}; stats at {em.url}/_emulator/stats")
    sys.stdout.flush()
    try:
        em.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        em.stop()

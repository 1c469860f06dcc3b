"""``llmcheck proxy``: run the fault-injecting proxy in front of an OpenAI-compatible
API until Ctrl-C or SIGTERM (also ``python -m llmcheck.cli.proxy proxy ...``)."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from typing import Any

from llmcheck.errors import UsageError
from llmcheck.injection.catalogue import (
    FaultPlan,
)
from llmcheck.loopback import add_listen_arguments, serve_until_interrupted
from llmcheck.model.guard import DEFAULT_MAX_BODY_BYTES, DEFAULT_READ_TIMEOUT_S, TOKEN_ENV
from llmcheck.model.proxy import FaultProxy
from llmcheck.model.wire import _shown

# ------------------------------------------------------------------------------ CLI


def add_proxy_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``proxy`` subcommand to an argparse subparsers object and return it."""
    parser = subparsers.add_parser(
        "proxy", help="run a fault-injecting proxy in front of an OpenAI-compatible API",
        description="Forward an OpenAI-compatible API (the simulator, a provider, a local "
                    "server) and inject faults of the llmcheck catalogue into chat "
                    "completions, until Ctrl-C. Point any client at the printed base URL.")
    parser.add_argument("--upstream", required=True, metavar="URL",
                        help="base URL to forward to, e.g. https://api.openai.com/v1")
    parser.add_argument("--faults", default="", metavar="SPEC",
                        help="fault rates, e.g. rate_limit:0.1,timeout:0.05,stream_cut:0.1 "
                             "(default: none, a transparent proxy)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    add_listen_arguments(parser, port=8001,
                         port_help="port to listen on (0 picks a free one; default 8001)")
    parser.add_argument("--upstream-key-env", metavar="NAME", default=None,
                        help="environment variable holding the upstream's API key; the "
                             "proxy sends it upstream, clients never see it (default: no "
                             "key, for a local upstream)")
    parser.add_argument("--token", default=None, metavar="TOKEN",
                        help=f"the key clients must present (Authorization: Bearer, api-key "
                             f"or x-api-key); default: ${TOKEN_ENV} if set, else a new "
                             "random one, printed at start. Prefer the variable: a "
                             "command-line token shows in ps")
    parser.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY_BYTES / 2**20,
                        metavar="MB", help="largest request body accepted, in MiB (larger: "
                        f"413; default {DEFAULT_MAX_BODY_BYTES / 2**20:g})")
    parser.add_argument("--max-connections", type=int, default=None, metavar="N",
                        help="open client connections served at once (more: 503 at once; "
                             "default: half the open-file limit, at most 512)")
    parser.add_argument("--read-timeout-s", type=float, default=DEFAULT_READ_TIMEOUT_S,
                        metavar="S", help="seconds a client has to send a request's headers, "
                        f"and again its body (default {DEFAULT_READ_TIMEOUT_S:g})")
    parser.add_argument("--retry-after", type=float, default=1.0, metavar="S",
                        help="Retry-After of an injected rate_limit (default 1)")
    parser.add_argument("--slow-s", type=float, default=2.0, metavar="S",
                        help="latency added by a slow fault (default 2)")
    parser.add_argument("--timeout-s", type=float, default=600.0, metavar="S",
                        help="how long a timeout fault holds a request before answering 504 "
                             "(default 600)")
    parser.set_defaults(func=proxy_command)
    return parser


def proxy_command(args: argparse.Namespace) -> int:
    """``llmcheck proxy``: serve until Ctrl-C or SIGTERM; return the exit code."""
    from llmcheck.text import printable

    try:
        plan = FaultPlan.parse(args.faults, seed=args.seed, retry_after=args.retry_after,
                               slow_s=args.slow_s, timeout_s=args.timeout_s)
        key = None
        if args.upstream_key_env:
            key = os.environ.get(args.upstream_key_env)
            if not key:
                raise UsageError(f"--upstream-key-env {args.upstream_key_env}: that "
                                 "environment variable is not set or empty")
        token = _token(args.token)
        if not args.max_body_mb > 0:
            raise UsageError(f"--max-body-mb must be above 0, got {args.max_body_mb:g}")
        proxy = FaultProxy(args.upstream, plan, host=args.host, port=args.port,
                           upstream_api_key=key, accept_key=token,
                           max_body_bytes=max(1, int(args.max_body_mb * 2**20)),
                           max_connections=args.max_connections,
                           read_timeout_s=args.read_timeout_s,
                           header_timeout_s=args.read_timeout_s)
        proxy.start()
    except UsageError as exc:
        print(f"llmcheck proxy: error: {printable(str(exc), newlines=True)}", file=sys.stderr)
        return 2
    def banner() -> None:
        print(f"llmcheck proxy listening on {proxy.url}", flush=True)
        print(f"  upstream: {printable(_shown(proxy.upstream))}"
              + (f" (key from ${args.upstream_key_env})" if key else ""), flush=True)
        print(f"  faults:   {plan.spec() or 'none'} (seed {plan.seed})", flush=True)
        print(f"  token:    {token} (the API key to give clients)", flush=True)
        print(f"  env:      OPENAI_BASE_URL={proxy.url} OPENAI_API_KEY={token}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)

    serve_until_interrupted(proxy, banner)
    served = proxy.faults_served
    print(f"llmcheck proxy stopped after {proxy.request_count} requests, "
          f"{sum(served.values())} faults injected", flush=True)
    return 0


def _token(given: str | None) -> str:
    """The proxy's token: ``--token``, else ``$LLMCHECK_PROXY_TOKEN``, else a new one."""
    token = given if given is not None else os.environ.get(TOKEN_ENV)
    if token is None:
        return "llmcheck-proxy-" + secrets.token_urlsafe(24)
    if len(token) < 16 or not token.isprintable() or " " in token:
        where = "--token" if given is not None else f"${TOKEN_ENV}"
        raise UsageError(f"{where}: a token is at least 16 printable characters without "
                         f"spaces (a guessable token lets any local program spend the "
                         f"upstream's key), got {len(token)} characters")
    return token


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m llmcheck.cli.proxy proxy --upstream URL``."""
    parser = argparse.ArgumentParser(prog="llmcheck")
    add_proxy_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))



__all__ = ["add_proxy_parser", "main", "proxy_command"]


if __name__ == "__main__":
    raise SystemExit(main())

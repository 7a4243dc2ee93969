"""Deploy one agent as a Cloud Run function (2nd gen) and register its URL.

``python -m signalsloop.release.deploy AGENT [--region europe-west1] [--project P] [--dry-run]``
(``make deploy AGENT=<name>``): builds ``build/functions/<agent>`` if it is
missing, runs ``gcloud functions deploy``, reads the function's URL back and
records it in ``public.agents.endpoint_url`` so the doorbell rings it.

The function is deployed with ``--allow-unauthenticated``: its caller is
Supabase's pg_net, which cannot mint Google identity tokens. Authentication is
the function's own: the bearer ``SIGNALSLOOP_SECRET``, checked in constant time
before anything else is read (see ``shared.runtime.check_secret``). Secrets come
from Google Secret Manager, never from the command line.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.errors import ConfigurationError, SignalsLoopError
from shared.settings import Settings
from signalsloop.release import package
from signalsloop.release.deploy_service import service_deploy_command, service_describe_command, service_secrets

DEFAULT_REGION = "europe-west1"
RUNTIME = "python311"
PLACEHOLDER_URL = "https://<project-ref>.supabase.co"
# Environment variable -> Google Secret Manager secret, for every function.
BASE_SECRETS = {"SIGNALSLOOP_SECRET": "signalsloop-secret", "SUPABASE_SERVICE_ROLE_KEY": "supabase-service-role-key"}
OPENAI_SECRET = {"OPENAI_API_KEY": "openai-api-key"}
# What a function called from outside verifies its callers with (package.CALLBACKS).
CALLBACK_SECRETS = {"slack_actions": {"SLACK_SIGNING_SECRET": "slack-signing-secret"}}


def service_name(agent: str) -> str:
    """Cloud Run names allow lowercase letters, digits and dashes only."""
    return "signalsloop-" + agent.replace("_", "-")


def shell(cmd: Sequence[str]) -> str:
    return shlex.join(cmd)


def gcloud_list(items: dict[str, str]) -> str:
    """KEY=VALUE pairs as one gcloud list, switching delimiter if a value holds a comma."""
    pairs = [f"{k}={v}" for k, v in items.items()]
    if any("," in p for p in pairs):
        return "^|^" + "|".join(pairs)
    return ",".join(pairs)


def uses_openai(agent: str) -> bool:
    """Agents whose direct requirements include the OpenAI SDK get the key (else they run offline)."""
    reqs = package.read_requirements(package.FUNCTIONS_DIR / agent / "requirements.txt")
    return any(r.name.lower() == "openai" for r in reqs)


def default_memory(agent: str) -> str:
    """The offline embedding table (wordllama) needs room; the others are small."""
    reqs = package.read_requirements(package.FUNCTIONS_DIR / agent / "requirements.txt")
    return "1Gi" if any(r.name.lower() == "wordllama" for r in reqs) else "512Mi"


def secrets_for(agent: str, *, openai: bool = True, extra: dict[str, str] | None = None) -> dict[str, str]:
    """ENV -> secret:version for ``--set-secrets``."""
    names = dict(BASE_SECRETS)
    if openai and uses_openai(agent):
        names.update(OPENAI_SECRET)
    if agent in CALLBACK_SECRETS:  # its callers sign with their own secret, not the doorbell's bearer
        names.pop("SIGNALSLOOP_SECRET")
        names.update(CALLBACK_SECRETS[agent])
    found = {env: f"{secret}:latest" for env, secret in names.items()}
    found.update(extra or {})
    return found


def location_flags(region: str, project: str | None) -> list[str]:
    return [f"--region={region}", *([f"--project={project}"] if project else [])]


# functions-framework's gunicorn on Cloud Run: clients reach Google's front
# end, not gunicorn (a half-open connection to it holds no container thread),
# and with these a handler still running at the service timeout (--timeout) is
# interrupted so its thread serves others (functions_framework/_http/gunicorn.py).
SERVER_ENV = {"THREADED_TIMEOUT_ENABLED": "True", "CLOUD_RUN_TIMEOUT_SECONDS": "300"}


def gcloud_deploy_command(agent: str, source: Path, *, region: str, project: str | None, supabase_url: str,
                          openai: bool = True, memory: str | None = None, env: dict[str, str] | None = None,
                          secrets: dict[str, str] | None = None, gcloud: str = "gcloud",
                          direct: bool = False) -> list[str]:
    """The exact ``gcloud functions deploy`` invocation for one agent (``gcloud run deploy`` for a service;
    ``direct`` mounts the dashboard's DATABASE_URL)."""
    if agent in package.SERVICES:
        return service_deploy_command(service_name(agent), source, location=location_flags(region, project),
                                      env=gcloud_list({"SUPABASE_URL": supabase_url, **(env or {})}),
                                      secrets=service_secrets(secrets, direct=direct), memory=memory, gcloud=gcloud)
    return [
        gcloud, "functions", "deploy", service_name(agent),
        "--gen2", f"--runtime={RUNTIME}", *location_flags(region, project),
        f"--source={source}", "--entry-point=handle", "--trigger-http", "--allow-unauthenticated",
        # Cloud Run must let a run last as long as its lease (agents.timeout_ms, up to 180 s for spec_writer).
        f"--memory={memory or default_memory(agent)}", "--timeout=300s",
        f"--set-env-vars={gcloud_list({'SUPABASE_URL': supabase_url, **SERVER_ENV, **(env or {})})}",
        f"--set-secrets={gcloud_list(secrets_for(agent, openai=openai, extra=secrets))}",
        "--quiet",
    ]


def describe_command(agent: str, *, region: str, project: str | None, gcloud: str = "gcloud") -> list[str]:
    if agent in package.SERVICES:
        return service_describe_command(service_name(agent), location=location_flags(region, project), gcloud=gcloud)
    return [gcloud, "functions", "describe", service_name(agent), "--gen2", *location_flags(region, project),
            "--format=value(serviceConfig.uri)"]


# --- recording the endpoint ---------------------------------------------------------------


def registration_target(settings: Settings) -> str | None:
    """Where the URL will be recorded, or None when nothing is configured."""
    if settings.database_url:
        return "DATABASE_URL (psycopg)"
    if settings.supabase_url and settings.supabase_service_role_key:
        return "SUPABASE_URL with SUPABASE_SERVICE_ROLE_KEY (supabase-py)"
    return None


def register(agent: str, url: str, settings: Settings, *, client: object = None) -> None:
    """Set ``agents.endpoint_url``; an agent missing from the registry is an error."""
    if settings.database_url:
        import psycopg

        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            updated = conn.execute("update public.agents set endpoint_url = %s, updated_at = now() where name = %s",
                                   (url, agent)).rowcount
    elif settings.supabase_url and settings.supabase_service_role_key:
        from shared.supabase_store import SupabaseStore

        store = SupabaseStore(settings.supabase_url, settings.supabase_service_role_key.get_secret_value(),
                              client=client)
        rows = store.client.table("agents").update({"endpoint_url": url}).eq("name", agent).execute().data
        updated = len(rows or [])
    else:
        raise ConfigurationError("set DATABASE_URL, or SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY, to record the URL")
    if not updated:
        raise ConfigurationError(f"agent {agent!r} is not in public.agents: apply the migrations first")


# --- running ---------------------------------------------------------------------------------


def run(cmd: Sequence[str], *, capture: bool = False) -> str:
    print(f"$ {shell(cmd)}", file=sys.stderr)
    done = subprocess.run(list(cmd), text=True, stdout=subprocess.PIPE if capture else None)
    if done.returncode != 0:
        raise ConfigurationError(f"{' '.join(cmd[:3])} failed with exit code {done.returncode}")
    return done.stdout or ""


def find_gcloud(dry_run: bool) -> str:
    found = shutil.which("gcloud")
    if found is None and not dry_run:
        raise ConfigurationError("gcloud not found: install the Google Cloud CLI "
                                 "(https://cloud.google.com/sdk/docs/install) and run `gcloud auth login`")
    return "gcloud" if dry_run or found is None else found


def supabase_url_for(args: argparse.Namespace, settings: Settings) -> str:
    url = args.supabase_url or settings.supabase_url
    if url:
        return str(url)
    if args.dry_run:
        print("note: SUPABASE_URL is not set; the command shows a placeholder", file=sys.stderr)
        return PLACEHOLDER_URL
    raise ConfigurationError("SUPABASE_URL is not set: the function reaches the database through it "
                             "(https://<project-ref>.supabase.co); set it or pass --supabase-url")


def check_registration(args: argparse.Namespace, settings: Settings) -> None:
    """Fail before a minutes-long deploy, not after it, when the URL cannot be recorded."""
    if args.no_register or registration_target(settings):
        return
    message = ("cannot record agents.endpoint_url: set DATABASE_URL, or SUPABASE_URL and "
               "SUPABASE_SERVICE_ROLE_KEY (or pass --no-register)")
    if not args.dry_run:
        raise ConfigurationError(message)
    print(f"note: {message}", file=sys.stderr)


def parse_pairs(values: Sequence[str], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise ConfigurationError(f"{what} expects KEY=VALUE, got {value!r}")
        pairs[key] = rest
    return pairs


def deploy(args: argparse.Namespace) -> int:
    if args.agent not in package.function_names():
        raise ConfigurationError(f"unknown agent {args.agent!r}: expected one of {', '.join(package.function_names())}")
    if args.direct and args.agent not in package.SERVICES:
        raise ConfigurationError(f"--direct is for the dashboard only (it mounts its DATABASE_URL), not {args.agent!r}")
    # A service, or a function Slack calls, is no agent endpoint: nothing to record in agents.
    args.no_register = args.no_register or args.agent in package.SERVICES or args.agent in package.CALLBACKS
    settings = Settings()
    supabase_url = supabase_url_for(args, settings)
    check_registration(args, settings)
    gcloud = find_gcloud(args.dry_run)
    source = args.out / args.agent
    cmd = gcloud_deploy_command(args.agent, source, region=args.region, project=args.project,
                                supabase_url=supabase_url, openai=not args.no_openai, memory=args.memory,
                                env=parse_pairs(args.env, "--env"), secrets=parse_pairs(args.secret, "--secret"),
                                gcloud=gcloud, direct=args.direct)
    describe = describe_command(args.agent, region=args.region, project=args.project, gcloud=gcloud)
    if args.dry_run:
        return print_plan(args, source, cmd, describe)
    if args.rebuild or not (source / "main.py").exists():
        package.build(args.agent, args.out)
    run(cmd)
    url = run(describe, capture=True).strip()
    if not url.startswith("http"):
        raise ConfigurationError(f"gcloud did not report the function's URL (got {url!r})")
    if not args.no_register:
        register(args.agent, url, settings)
        print(f"{args.agent}: {url} recorded in agents.endpoint_url", file=sys.stderr)
    elif args.agent in package.CALLBACKS:
        print(f"{args.agent}: {package.CALLBACKS[args.agent]}", file=sys.stderr)
    print(url)
    return 0


def print_plan(args: argparse.Namespace, source: Path, cmd: list[str], describe: list[str]) -> int:
    if args.rebuild or not (source / "main.py").exists():
        print(shell([sys.executable, "-m", "signalsloop.release.package", "--out", str(args.out), args.agent]))
    print(shell(cmd))
    print(shell(describe))
    if not args.no_register:
        print(f"update public.agents set endpoint_url = '<url from describe>' where name = '{args.agent}';")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m signalsloop.release.deploy",
                                     description="Deploy one agent to Cloud Run functions and register its URL.")
    parser.add_argument("agent", metavar="AGENT")
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--project", help="Google Cloud project (default: gcloud's configured one)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--out", type=Path, default=package.DEFAULT_OUT, help="where packages are built")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the package even if it exists")
    parser.add_argument("--supabase-url", help="override SUPABASE_URL for the function")
    parser.add_argument("--memory", help="memory limit (default: 1Gi with the offline analyzer, else 512Mi)")
    parser.add_argument("--no-openai", action="store_true", help="do not mount OPENAI_API_KEY (offline analyzer)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment")
    parser.add_argument("--secret", action="append", default=[], metavar="ENV=SECRET:VERSION",
                        help="extra Secret Manager mount, e.g. SLACK_BOT_TOKEN=slack-bot-token:latest")
    parser.add_argument("--no-register", action="store_true", help="do not record agents.endpoint_url")
    parser.add_argument("--direct", action="store_true",
                        help="dashboard only: also mount DATABASE_URL (secret signalsloop-dashboard-database-url), "
                             "pages on a direct connection; default: the Supabase URL and keys only")
    return parser


def main(args: Sequence[str] | None = None) -> int:
    parsed = build_parser().parse_args(args)
    try:
        return deploy(parsed)
    except SignalsLoopError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

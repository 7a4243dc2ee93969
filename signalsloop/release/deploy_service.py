"""Deploying a service folder (the dashboard) to Cloud Run.

The dashboard is not a functions-framework function: it serves pages and
keeps a websocket open per browser, and its server learns of new events in
the background (Realtime, LISTEN or polling). So it is a Cloud Run *service*
built from the same self-contained folder (``python main.py`` from its
Procfile) with: session affinity (a browser's websocket returns to its
instance), CPU always allocated and one warm instance (the background feed),
and a 60-minute request timeout (websockets are requests to Cloud Run).
It is public like the agents, and authenticates by itself: no page or API
answers without a session from Supabase Auth.
"""

from __future__ import annotations

from pathlib import Path

# Environment variable -> Google Secret Manager secret. The default shape is
# the least privileged one: no database password on the service; members read
# through PostgREST under RLS with their own Supabase access token.
SERVICE_SECRETS = {
    "SUPABASE_ANON_KEY": "supabase-anon-key",  # Supabase Auth sign-in; PostgREST's apikey
    "SUPABASE_SERVICE_ROLE_KEY": "supabase-service-role-key",  # Realtime wake-ups; operators' reads
    "DASHBOARD_SESSION_SECRET": "signalsloop-dashboard-session-secret",  # signs session cookies
}
# Opt-in (``--direct``, ``make deploy AGENT=dashboard DASHBOARD_DIRECT=1``): a
# direct or session-pooler URL; pages then set the member's role per transaction.
DIRECT_SECRET = {"DATABASE_URL": "signalsloop-dashboard-database-url"}


def service_deploy_command(name: str, source: Path, *, location: list[str], env: str, secrets: dict[str, str],
                           memory: str | None, gcloud: str) -> list[str]:
    return [
        gcloud, "run", "deploy", name, f"--source={source}", *location,
        "--allow-unauthenticated", "--session-affinity", "--no-cpu-throttling", "--min-instances=1",
        "--timeout=3600", f"--memory={memory or '1Gi'}", f"--set-env-vars={env}",
        f"--set-secrets={','.join(f'{k}={v}' for k, v in secrets.items())}", "--quiet",
    ]


def service_secrets(extra: dict[str, str] | None = None, *, direct: bool = False) -> dict[str, str]:
    names = {**SERVICE_SECRETS, **(DIRECT_SECRET if direct else {})}
    return {**{env: f"{secret}:latest" for env, secret in names.items()}, **(extra or {})}


def service_describe_command(name: str, *, location: list[str], gcloud: str) -> list[str]:
    return [gcloud, "run", "services", "describe", name, *location, "--format=value(status.url)"]


def service_text(agent: str) -> str:
    from signalsloop.release.deploy import DEFAULT_REGION, describe_command, gcloud_deploy_command, shell

    deploy = gcloud_deploy_command(agent, Path("."), region=DEFAULT_REGION, project=None,
                                   supabase_url="https://<project-ref>.supabase.co")
    return f"""\
SignalsLoop `{agent}`: a Cloud Run service (python main.py, see Procfile).

From the repository: make deploy AGENT={agent}
By hand, from this folder (the secrets must exist in Google Secret Manager first:
{', '.join(SERVICE_SECRETS.values())}):

{shell(deploy)}

Its URL: {shell(describe_command(agent, region=DEFAULT_REGION, project=None))}

People sign in with Supabase Auth (email and password); DASHBOARD_OPERATORS
(comma-separated emails, --env) sign in as operators who see every project.
Pages read through PostgREST with each member's own access token (operators
with the service-role key); no database password is on the service. To read
on a direct connection instead, add the secret {DIRECT_SECRET['DATABASE_URL']}
and deploy with `make deploy AGENT={agent} DASHBOARD_DIRECT=1` (or add
DATABASE_URL={DIRECT_SECRET['DATABASE_URL']}:latest to --set-secrets above):
see docs/dashboard.md.
"""

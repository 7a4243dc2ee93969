"""``signalsloop doctor``: is this deployment wired up? Each check is plain
data (name, status, one-line message, one-line fix), computed from the jsonb
of ``public.doctor_report()`` (the same SQL for a DATABASE_URL and a Supabase
project) plus HTTP probes of each enabled agent's endpoint.

Statuses: ``ok``; ``fail`` (the doctor exits non-zero); ``n/a`` (does not
apply to this doorbell, e.g. Vault on a local NOTIFY database).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

OK, FAIL, NA = "ok", "fail", "n/a"
SECRET_NAME = "signalsloop_secret"
RELAY_FIX = "run the relay beside the database (signalsloop relay): it rings over NOTIFY and sweeps on its timer"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    message: str
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Probe:
    """What one POST of ``{}`` to an endpoint got: a status code, or the
    transport failure (``refused``, ``timed_out``, ``error``) and its text."""

    status: int | None = None
    failure: str | None = None
    detail: str = ""


ProbeFn = Callable[[str, str | None, float], Probe]


def all_hold(checks: Iterable[Check]) -> bool:
    return all(c.status != FAIL for c in checks)


def run_checks(report: Mapping[str, Any], probe: ProbeFn, *, local_secret: str | None = None,
               timeout: float = 3.0) -> list[Check]:
    """Every check, in the order the doctor prints them."""
    checks = check_extensions(report)
    checks.append(check_vault(report))
    checks += check_endpoints(report, probe, secret_in_use(report, local_secret), timeout)
    checks.append(check_sweep(report))
    checks.append(check_net_failures(report))
    checks += check_deliveries(report)
    checks.append(check_circuits(report))
    return checks


def doorbell(report: Mapping[str, Any]) -> str:
    return str(report["doorbell"]["effective"])


def secret_in_use(report: Mapping[str, Any], local_secret: str | None) -> tuple[str | None, str]:
    """The secret the doorbell sends and where it comes from: Vault for pg_net,
    the relay's SIGNALSLOOP_SECRET for NOTIFY."""
    vault = report["vault"]
    if doorbell(report) in ("pg_net", "both") or vault.get("secret"):
        return vault.get("secret"), f"the Vault secret '{SECRET_NAME}'"
    return local_secret, "SIGNALSLOOP_SECRET (what the relay sends)"


# --- extensions and Vault ------------------------------------------------------------

EXTENSION_ROLE = {
    "pg_net": "the doorbell is NOTIFY: " + RELAY_FIX,
    "pg_cron": "the sweep is not scheduled in the database: " + RELAY_FIX,
    "vector": "similarity search falls back to real[] arrays (exact, slower on large projects)",
}


def check_extensions(report: Mapping[str, Any]) -> list[Check]:
    checks = []
    for name in EXTENSION_ROLE:
        ext, title = report["extensions"][name], f"extension {name}"
        if ext["installed"]:
            checks.append(Check(title, OK, f"{name} {ext['installed']} installed"))
        elif ext["available"]:
            checks.append(_not_created(name, ext, report.get("shared_preload_libraries")))
        else:
            checks.append(Check(title, NA, f"{name} is not available on this server: {EXTENSION_ROLE[name]}"))
    return checks


def _not_created(name: str, ext: Mapping[str, Any], preload: str | None) -> Check:
    """Installed on the server, not created here: for pg_net and pg_cron most
    often because they are not preloaded (``preload`` is None where the role
    may not read the setting)."""
    message = f"{name} {ext['default_version']} is available but not created"
    if name not in ("pg_net", "pg_cron") or (preload is not None and name in preload):
        fix = f"create extension {name}" + ("; then select public.schedule_sweep();" if name == "pg_cron" else "")
    else:
        if preload is not None:
            message += f" and not in shared_preload_libraries ({preload or 'empty'})"
        fix = (f"add {name} to shared_preload_libraries"
               + (", set cron.database_name to this database" if name == "pg_cron" else "")
               + f", restart PostgreSQL, then `create extension {name}`"
               + (" and `select public.schedule_sweep()`" if name == "pg_cron" else ""))
    return Check(f"extension {name}", FAIL, f"{message}; " + EXTENSION_ROLE[name].split(":")[0], fix)


def check_vault(report: Mapping[str, Any]) -> Check:
    vault, bell = report["vault"], doorbell(report)
    title = "vault secret"
    if not vault["present"]:
        if bell in ("pg_net", "both"):
            return Check(title, FAIL, "Vault is absent but the doorbell is pg_net: every ring goes out without a "
                         "secret and every function answers 401",
                         "install supabase_vault and create the secret, or set backbone_config.doorbell = 'notify' "
                         "and run the relay")
        return Check(title, NA, f"Vault is absent (doorbell {bell}): the relay sends SIGNALSLOOP_SECRET itself")
    fix = f"select vault.create_secret('<the functions SIGNALSLOOP_SECRET>', '{SECRET_NAME}');"
    if not vault.get("secret_exists"):
        return Check(title, FAIL, f"no Vault secret '{SECRET_NAME}': pg_net rings without Authorization and every "
                     "function answers 401", fix)
    if not vault.get("secret_readable"):
        return Check(title, FAIL, f"the Vault secret '{SECRET_NAME}' exists but decrypts to nothing",
                     f"update it: select vault.update_secret(id, '<secret>') from vault.secrets "
                     f"where name = '{SECRET_NAME}';")
    return Check(title, OK, f"Vault secret '{SECRET_NAME}' exists")


# --- endpoints -----------------------------------------------------------------------


def check_endpoints(report: Mapping[str, Any], probe: ProbeFn, secret: tuple[str | None, str],
                    timeout: float) -> list[Check]:
    checks = []
    for agent in report["agents"]:
        if agent["enabled"]:
            checks.append(check_endpoint(agent, probe, secret, timeout))
    return checks


def _transport(probe: Probe, url: str, timeout: float) -> str:
    if probe.failure == "refused":
        return f"connection refused at {url} (nothing listens there)"
    if probe.failure == "timed_out":
        return f"no answer from {url} within {timeout:g} s (timed out)"
    return f"cannot reach {url}: {probe.detail}"


def check_endpoint(agent: Mapping[str, Any], probe: ProbeFn, secret: tuple[str | None, str],
                   timeout: float) -> Check:
    name, url = agent["name"], agent["endpoint_url"]
    title = f"endpoint {name}"
    if not url:
        return Check(title, FAIL, "no endpoint_url: its deliveries are never rung",
                     f"update agents set endpoint_url = '<function URL>' where name = '{name}';")
    fix_url = f"check the function is deployed and agents.endpoint_url of '{name}' is its URL"
    bare = probe(url, None, timeout)
    if bare.status is None:
        return Check(title, FAIL, _transport(bare, url, timeout), fix_url)
    if bare.status == 404:
        return Check(title, FAIL, f"{url} answers 404: no function there", fix_url)
    if bare.status != 401:
        return Check(title, FAIL, f"{url} answers {bare.status} without the secret (expected 401)",
                     "set SIGNALSLOOP_SECRET on the function and redeploy it" if bare.status >= 500 else fix_url)
    value, source = secret
    if value is None:
        vault = source.startswith("the Vault")
        return Check(title, NA, f"{url} answers 401 without the secret; {source} is not set, so whether the "
                     "function accepts it is untested",
                     "create the Vault secret (see vault secret)" if vault
                     else "set SIGNALSLOOP_SECRET in this shell to the relay's to test it")
    signed = probe(url, value, timeout)
    if signed.status == 400:
        return Check(title, OK, f"{url} answers 401 without the secret and accepts {source}")
    if signed.status is None:
        return Check(title, FAIL, _transport(signed, url, timeout), fix_url)
    if signed.status == 401:
        return Check(title, FAIL, f"{url} rejects {source} (401): the function's SIGNALSLOOP_SECRET differs",
                     f"set the function's SIGNALSLOOP_SECRET to {source}, or the other way round")
    return Check(title, FAIL, f"{url} answers {signed.status} to an empty body with {source} (expected 400)",
                 fix_url)


# --- sweep, pg_net, deliveries, circuits -----------------------------------------------


def check_sweep(report: Mapping[str, Any]) -> Check:
    cron, title = report["cron"], "sweep job"
    if not cron["present"]:
        return Check(title, NA, f"pg_cron is absent (doorbell {doorbell(report)}): the relay must run to sweep",
                     RELAY_FIX)
    jobs = [j for j in cron.get("jobs", []) if j["active"]]
    if not jobs:
        return Check(title, FAIL, "no active pg_cron job 'signalsloop-sweep': unanswered doorbells are never "
                     "rung again", "select public.schedule_sweep();")
    job = jobs[0]
    runs = cron.get("runs", [])
    failed = [r for r in runs if r["status"] == "failed"]
    what = f"'{job['schedule']}' {job['command']}"
    if failed:
        return Check(title, FAIL, f"{len(failed)} of the last {len(runs)} runs of {what} failed: "
                     f"{(failed[0]['return_message'] or '').strip()}",
                     "fix the error above (select * from cron.job_run_details order by start_time desc)")
    if not runs:
        return Check(title, FAIL, f"{what} is scheduled but has not run in the last {report['window_minutes']} "
                     "minutes", "check that pg_cron's cron.database_name is this database and its worker runs")
    return Check(title, OK, f"{what}: {len(runs)} run(s) in the last {report['window_minutes']} minutes, "
                 "none failed")


NET_FIXES = {
    "401": "the functions reject the Vault secret: make it equal to their SIGNALSLOOP_SECRET",
    "404": "an agents.endpoint_url points at no function: correct it",
    "413": "bodies exceed the functions' MAX_BODY_BYTES: raise it",
    "refused": "an endpoint refuses connections: deploy the function or correct agents.endpoint_url",
    "timed_out": "an endpoint answers slower than agents.timeout_ms: raise it or speed the function up",
}


def check_net_failures(report: Mapping[str, Any]) -> Check:
    net, title = report["net"], "pg_net responses"
    if not net["present"]:
        return Check(title, NA, f"pg_net is absent (doorbell {doorbell(report)}): no pg_net responses to read")
    failures = net.get("failures", [])
    if not failures:
        return Check(title, OK, f"{net.get('total', 0)} responses in the last {report['window_minutes']} minutes, "
                     "no failures")
    kinds = ", ".join(f"{f['kind']} x{f['count']}" for f in failures)
    top = failures[0]
    fix = NET_FIXES.get(top["kind"], "see net._http_response and the functions' logs")
    return Check(title, FAIL, f"failures in the last {report['window_minutes']} minutes: {kinds} "
                 f"(most often {top['kind']}: {str(top.get('sample') or '').strip()[:120]})", fix)


def check_deliveries(report: Mapping[str, Any]) -> list[Check]:
    checks = []
    for row in report["deliveries"]:
        parts = []
        if row["stuck"]:
            refused = f", {row['ring_errors']} rings refused or unanswered" if row.get("ring_errors") else ""
            parts.append(f"{row['stuck']} stuck (rung up to {row['max_ring_count']} times{refused})")
        if row["dead"]:
            parts.append(f"{row['dead']} dead")
        error = f"; last error: {row['last_error']}" if row.get("last_error") else ""
        fix = (f"fix the cause, then signalsloop replay --dead --agent {row['agent']}" if row["dead"]
               else "see signalsloop agents and the function's logs; the sweep rings them again")
        checks.append(Check(f"deliveries {row['agent']}", FAIL, ", ".join(parts) + error, fix))
    if not checks:
        checks.append(Check("deliveries", OK, "none stuck or dead"))
    return checks


def check_circuits(report: Mapping[str, Any]) -> Check:
    tripped = [a for a in report["agents"] if a["circuit_state"] != "closed"]
    if not tripped:
        return Check("circuits", OK, "all closed")
    desc = ", ".join(f"{a['name']} {a['circuit_state']} after {a['consecutive_failures']} failures"
                     + (f" since {a['circuit_opened_at']}" if a.get("circuit_opened_at") else "") for a in tripped)
    return Check("circuits", FAIL, desc, "fix the failing agent; after the cool-down one trial delivery goes "
                 "through and closes the circuit when it succeeds")

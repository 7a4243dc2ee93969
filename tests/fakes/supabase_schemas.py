"""Stand-ins for Supabase's extension schemas where the extensions are absent
(the embedded PostgreSQL 18): ``net``, ``cron`` and ``vault`` with the real
extensions' table shapes (pg_net 0.20, pg_cron 1.4-1.6, supabase_vault 0.3)
and the functions the migrations call, so the doctor and the scheduling code
read and write exactly what they would on Supabase. Nothing here sends,
schedules or encrypts anything."""

from __future__ import annotations

from typing import Any

import psycopg

NET_SQL = """
create schema net;
create table net.http_request_queue (
  id bigserial primary key, method text not null, url text not null, headers jsonb not null,
  body bytea, timeout_milliseconds integer not null);
create table net._http_response (
  id bigint, status_code integer, content_type text, headers jsonb, content text,
  timed_out boolean, error_msg text, created timestamptz not null default now());
create function net.http_post(url text, body jsonb default '{}', params jsonb default '{}',
                              headers jsonb default '{"Content-Type": "application/json"}',
                              timeout_milliseconds integer default 5000) returns bigint
language sql as $$
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', url, headers, convert_to(body::text, 'UTF8'), timeout_milliseconds) returning id
$$;
"""

# cron.schedule as pg_cron has it; before 1.5 it rejects second schedules with
# 22023 "invalid schedule", as the real one does.
CRON_SQL = """
create schema cron;
create table cron.job (
  jobid bigserial primary key, schedule text not null, command text not null,
  nodename text not null default 'localhost', nodeport integer not null default 5432,
  database text not null default current_database(), username text not null default current_user,
  active boolean not null default true, jobname text unique);
create table cron.job_run_details (
  jobid bigint, runid bigserial primary key, job_pid integer, database text, username text, command text,
  status text, return_message text, start_time timestamptz, end_time timestamptz);
create function cron.schedule(job_name text, schedule text, command text) returns bigint
language plpgsql as $$
declare
  v_id bigint;
begin
  if schedule ~ 'second' and not {seconds} then
    raise exception using errcode = '22023', message = format('invalid schedule: %s', schedule);
  end if;
  insert into cron.job (jobname, schedule, command) values (job_name, schedule, command)
  on conflict (jobname) do update set schedule = excluded.schedule, command = excluded.command
  returning jobid into v_id;
  return v_id;
end
$$;
"""

VAULT_SQL = """
create schema vault;
create table vault.secrets (
  id uuid primary key default gen_random_uuid(), name text unique, description text not null default '',
  secret text not null, key_id uuid, nonce bytea,
  created_at timestamptz not null default now(), updated_at timestamptz not null default now());
create view vault.decrypted_secrets as
  select id, name, description, secret, secret as decrypted_secret, key_id, nonce, created_at, updated_at
    from vault.secrets;
create function vault.create_secret(new_secret text, new_name text default null, new_description text default '',
                                    new_key_id uuid default null) returns uuid
language sql as $$
  insert into vault.secrets (secret, name, description, key_id)
  values (new_secret, new_name, new_description, new_key_id) returning id
$$;
"""


def install_net(conn: psycopg.Connection[Any]) -> None:
    conn.execute(NET_SQL)


def install_cron(conn: psycopg.Connection[Any], *, seconds: bool = True) -> None:
    """pg_cron 1.5+ when ``seconds``, else a 1.4 that has no second schedules."""
    conn.execute(CRON_SQL.replace("{seconds}", "true" if seconds else "false"))


def install_vault(conn: psycopg.Connection[Any], secret: str | None = None) -> None:
    conn.execute(VAULT_SQL)
    if secret is not None:
        conn.execute("select vault.create_secret(%s, 'signalsloop_secret')", (secret,))


def record_response(conn: psycopg.Connection[Any], *, status: int | None = None, error: str | None = None,
                    timed_out: bool = False, content: str = "", age_minutes: float = 0) -> None:
    """A row of net._http_response as pg_net writes it after a request."""
    conn.execute(
        "insert into net._http_response (id, status_code, content, timed_out, error_msg, created) "
        "values ((select coalesce(max(id), 0) + 1 from net._http_response), %s, %s, %s, %s, "
        "now() - make_interval(secs => %s * 60))",
        (status, content, timed_out, error, age_minutes))


def record_run(conn: psycopg.Connection[Any], status: str, message: str = "") -> None:
    """A run of the sweep job in cron.job_run_details."""
    conn.execute(
        "insert into cron.job_run_details (jobid, command, status, return_message, start_time, end_time) "
        "select jobid, command, %s, %s, now(), now() from cron.job where jobname = 'signalsloop-sweep'",
        (status, message))

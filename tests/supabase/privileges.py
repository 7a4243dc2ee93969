"""What the API roles may do, read from the catalog (``has_*_privilege``), for
every object in the project's schemas; compared with :mod:`tests.supabase.privileges_allowlist`."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

API_ROLES = ("anon", "authenticated", "service_role")
# Schemas the project creates or fills: public (the migrations) and
# supabase_migrations (the migration history, `signalsloop db migrate` or the Supabase CLI).
PROJECT_SCHEMAS = ("public", "supabase_migrations")

Privilege = tuple[str, str, str, str]  # (kind, object, role, privilege)

_NOT_EXTENSION = """not exists (select 1 from pg_depend e where e.classid = %(catalog)s::regclass
                                 and e.objid = {oid} and e.deptype = 'e')"""

RELATIONS_SQL = f"""
select c.oid, format('%%I.%%I', n.nspname, c.relname) as name, c.relkind::text as relkind
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
   and {_NOT_EXTENSION.format(oid='c.oid')}
"""

FUNCTIONS_SQL = f"""
select p.oid, format('%%I.%%I(%%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)) as name
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = any(%(schemas)s) and {_NOT_EXTENSION.format(oid='p.oid')}
"""


def table_privileges(conn: psycopg.Connection[Any]) -> list[str]:
    """TABLE privileges this server knows (MAINTAIN since PostgreSQL 17)."""
    version = int(_rows(conn, "show server_version_num", {})[0]["server_version_num"])
    return ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER",
            *(["MAINTAIN"] if version >= 170000 else [])]


def project_objects(conn: psycopg.Connection[Any]) -> dict[str, set[str]]:
    """Every table, view, sequence, function and schema of the project, by kind."""
    params = {"schemas": list(PROJECT_SCHEMAS), "catalog": "pg_class"}
    relations = _rows(conn, RELATIONS_SQL, params)
    functions = _rows(conn, FUNCTIONS_SQL, {**params, "catalog": "pg_proc"})
    return {"table": {r["name"] for r in relations if r["relkind"] != "S"},
            "sequence": {r["name"] for r in relations if r["relkind"] == "S"},
            "function": {r["name"] for r in functions},
            "schema": set(PROJECT_SCHEMAS)}


def actual_privileges(conn: psycopg.Connection[Any]) -> set[Privilege]:
    """(kind, object, role, privilege) for every privilege an API role holds.

    Column privileges are listed (as ``table(column)``) only where the role
    lacks the privilege on the whole table.
    """
    found: set[Privilege] = set()
    params = {"schemas": list(PROJECT_SCHEMAS), "roles": list(API_ROLES), "catalog": "pg_class"}
    for privilege in table_privileges(conn):
        rows = _rows(conn, f"""
            select r.role, format('%%I.%%I', n.nspname, c.relname) as name
              from pg_class c join pg_namespace n on n.oid = c.relnamespace, unnest(%(roles)s::text[]) r(role)
             where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p', 'v', 'm', 'f')
               and {_NOT_EXTENSION.format(oid='c.oid')}
               and has_table_privilege(r.role, c.oid, '{privilege}')""", params)
        found |= {("table", row["name"], row["role"], privilege) for row in rows}
    for privilege in ("SELECT", "INSERT", "UPDATE", "REFERENCES"):
        rows = _rows(conn, f"""
            select r.role, format('%%I.%%I(%%I)', n.nspname, c.relname, a.attname) as name
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
              join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped,
                   unnest(%(roles)s::text[]) r(role)
             where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p', 'v', 'm', 'f')
               and {_NOT_EXTENSION.format(oid='c.oid')}
               and not has_table_privilege(r.role, c.oid, '{privilege}')
               and has_column_privilege(r.role, c.oid, a.attnum, '{privilege}')""", params)
        found |= {("column", row["name"], row["role"], privilege) for row in rows}
    for privilege in ("USAGE", "SELECT", "UPDATE"):
        rows = _rows(conn, f"""
            select r.role, format('%%I.%%I', n.nspname, c.relname) as name
              from pg_class c join pg_namespace n on n.oid = c.relnamespace, unnest(%(roles)s::text[]) r(role)
             where n.nspname = any(%(schemas)s) and c.relkind = 'S' and {_NOT_EXTENSION.format(oid='c.oid')}
               and has_sequence_privilege(r.role, c.oid, '{privilege}')""", params)
        found |= {("sequence", row["name"], row["role"], privilege) for row in rows}
    rows = _rows(conn, f"""
        select r.role, format('%%I.%%I(%%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)) as name
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace, unnest(%(roles)s::text[]) r(role)
         where n.nspname = any(%(schemas)s) and {_NOT_EXTENSION.format(oid='p.oid')}
           and has_function_privilege(r.role, p.oid, 'EXECUTE')""",
                        {**params, "catalog": "pg_proc"})
    found |= {("function", row["name"], row["role"], "EXECUTE") for row in rows}
    for privilege in ("USAGE", "CREATE"):
        rows = _rows(conn, f"""
            select r.role, n.nspname as name from pg_namespace n, unnest(%(roles)s::text[]) r(role)
             where n.nspname = any(%(schemas)s) and has_schema_privilege(r.role, n.oid, '{privilege}')""",
                            params)
        found |= {("schema", row["name"], row["role"], privilege) for row in rows}
    return found


def _rows(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.encode(), params).fetchall()

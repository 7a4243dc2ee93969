"""No JIT inside the backbone's functions (20261202001601_no_jit.sql): the
catalog says so for every function with a SET clause, and the setting is in
force while such a function runs, whatever the session's own."""

from __future__ import annotations

import psycopg

NO_JIT_SQL = """
select p.oid::regprocedure::text as ident, p.proname, p.proconfig
  from pg_proc p
 where p.pronamespace = 'public'::regnamespace and p.prokind = 'f' and p.proconfig is not null
   and not exists (select 1 from pg_depend e where e.classid = 'pg_proc'::regclass and e.objid = p.oid
                                             and e.deptype = 'e')
"""


def test_every_backbone_function_with_a_set_clause_runs_without_jit(db: psycopg.Connection) -> None:
    rows = db.execute(NO_JIT_SQL).fetchall()
    assert len(rows) > 50, "the backbone's security definer functions are all here"
    missing = [r["ident"] for r in rows if "jit=off" not in r["proconfig"]]
    assert missing == [], f"re-created without jit = off: end the migration with select public.disable_jit(): {missing}"
    # The hot path and the alert check that JIT made slow are among them.
    assert {"agent_health_now", "drain_hold", "claim_next", "fan_out_event"} <= {r["proname"] for r in rows}


def test_disable_jit_covers_a_function_created_later_and_its_setting_holds_inside(db: psycopg.Connection) -> None:
    db.execute("create function public.jit_probe() returns text language sql "
               "set search_path = public, pg_temp as $$ select current_setting('jit') $$")
    db.execute("create function public.jit_inlinable() returns text language sql "
               "as $$ select current_setting('jit') $$")
    db.execute("set jit = on")
    assert db.execute("select public.jit_probe() as v").fetchone()["v"] == "on"  # type: ignore[index]
    assert db.execute("select public.disable_jit() as n").fetchone()["n"] == 1  # type: ignore[index]
    assert db.execute("select public.jit_probe() as v").fetchone()["v"] == "off"  # type: ignore[index]
    # A function with no SET clause keeps none (it may be inlined), and the session keeps its own setting.
    assert db.execute("select public.jit_inlinable() as v").fetchone()["v"] == "on"  # type: ignore[index]
    assert db.execute("select current_setting('jit') as v").fetchone()["v"] == "on"  # type: ignore[index]
    assert db.execute("select public.disable_jit() as n").fetchone()["n"] == 0  # type: ignore[index]

"""A fake PostgREST at its HTTP boundary that forwards RPCs to the real test
database as the caller, the way PostgREST does: the bearer JWT (HS256,
checked against the project's secret) names the role, the transaction does
``set local role <role>`` with the claims in ``request.jwt.claims``, and the
JSON body becomes the function's named arguments through
``json_to_record`` (arrays to arrays). Errors come back in PostgREST's
shape (``code``, ``message``): 401 for a privilege refused to anon, 403
to anyone else, 404 ``PGRST202`` for a function that does not exist, 503
``PGRST001`` when the database cannot be reached.

``Supabase`` serves it beside the fake Auth on one URL (what a deployed
dashboard gets as ``SUPABASE_URL``); ``respx_route`` mounts it in respx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from tests.fakes import Canned, RecordedRequest
from tests.fakes.supabase_auth_server import FakeSupabaseAuth

JWT_SECRET = "test-jwt-secret-with-at-least-32-characters"
ANON_KEY = jwt.encode({"role": "anon", "iss": "supabase"}, JWT_SECRET, algorithm="HS256")
SERVICE_ROLE_KEY = jwt.encode({"role": "service_role", "iss": "supabase"}, JWT_SECRET, algorithm="HS256")
RPC_PREFIX = "/rest/v1/rpc/"


@dataclass
class PostgrestOverDatabase:
    db_url: str
    calls: list[dict[str, Any]] = field(default_factory=list)  # function, role, sub, bearer, apikey, args

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        lowered = {k.lower(): v for k, v in headers.items()}
        if method != "POST" or not path.startswith(RPC_PREFIX):
            return 404, {"code": "PGRST125", "message": f"fake: no route {method} {path}"}
        if lowered.get("apikey") not in (ANON_KEY, SERVICE_ROLE_KEY):
            return 401, {"message": "Invalid API key"}
        bearer = lowered.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(bearer, JWT_SECRET, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.PyJWTError as exc:
            return 401, {"code": "PGRST301", "message": f"JWT invalid: {exc}"}
        function, args = path.removeprefix(RPC_PREFIX), json.loads(body or b"{}")
        self.calls.append({"function": function, "role": claims.get("role"), "sub": claims.get("sub"),
                           "bearer": bearer, "apikey": lowered.get("apikey"), "args": args})
        try:
            return 200, self.run(function, args, claims)
        except LookupError as exc:
            return 404, {"code": "PGRST202", "message": str(exc), "details": None, "hint": None}
        except psycopg.errors.InsufficientPrivilege as exc:  # PostgREST: 401 before sign-in, else 403
            refused = {"code": exc.sqlstate, "message": exc.diag.message_primary, "details": None, "hint": None}
            return 401 if claims.get("role") == "anon" else 403, refused
        except psycopg.OperationalError as exc:  # PostgREST without its database
            return 503, {"code": "PGRST001", "message": f"Database client error: {exc}", "details": None, "hint": None}
        except psycopg.Error as exc:
            return 400, {"code": exc.sqlstate, "message": exc.diag.message_primary, "details": None, "hint": None}

    def run(self, function: str, args: dict[str, Any], claims: dict[str, Any]) -> Any:
        with psycopg.connect(self.db_url, autocommit=True, row_factory=dict_row) as conn, conn.transaction():
            types = {r["name"]: r["type"] for r in conn.execute("""
                select a.name, format_type(a.type, null) as type
                  from pg_proc p, unnest(p.proargnames, p.proargtypes::oid[]) a(name, type)
                 where p.oid = to_regproc(%s)""", (f"public.{function}",))}
            known = conn.execute("select to_regproc(%s) is not null as known", (f"public.{function}",)).fetchone()
            if not (known and known["known"]):
                raise LookupError(f"Could not find the function public.{function} in the schema cache")
            unknown = sorted(set(args) - set(types))
            if unknown:  # PostgREST: no function of that name takes these arguments
                raise psycopg.errors.UndefinedFunction(f"public.{function} has no argument {unknown}")
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(str(claims.get("role", "anon")))))
            conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
            call = sql.SQL("select public.{}({}) as result from json_to_record(%s::json) as x({})").format(
                sql.Identifier(function),
                sql.SQL(", ").join(sql.SQL("{0} => x.{0}").format(sql.Identifier(k)) for k in args),
                sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(k), sql.SQL(types[k])) for k in args)
                if args else sql.SQL("unused text"))
            row = conn.execute(call, (json.dumps(args),)).fetchone()
        return json.loads(json.dumps(row["result"] if row else None, default=str))

    def respx_side_effect(self, request: httpx.Request) -> httpx.Response:
        status, body = self.answer(request.method, request.url.path, dict(request.headers), request.content)
        return httpx.Response(status, json=body)


class FakeSupabase(FakeSupabaseAuth):
    """Auth and PostgREST on one URL: a Supabase project as the dashboard sees it."""

    def __init__(self, db_url: str) -> None:
        super().__init__(jwt_secret=JWT_SECRET)
        self.rest = PostgrestOverDatabase(db_url)

    def default_response(self, request: RecordedRequest) -> Canned:
        if request.path.startswith(RPC_PREFIX):
            status, body = self.rest.answer(request.method, request.path, dict(request.headers), request.body)
            return Canned(status, body)
        return super().default_response(request)

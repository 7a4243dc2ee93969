"""The packaged spec_quality and slack_actions functions handle real requests
on their own: started from the built folder with nothing from the repository
importable, against a real database, they do their work, and every library a
request loads (lazy imports included) is pinned in the folder's requirements.

tests/signalsloop/release/test_package.py proves the layout, the pins and the
401/400 answers; these tests go one step further, through a whole request.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

import httpx
from psycopg.types.json import Jsonb
from slack_sdk.signature import SignatureVerifier

from shared.events import WebhookPayload
from tests.helpers import Seed
from tests.signalsloop.release.conftest import SECRET, isolated_env

SIGNING_SECRET = "packaged-slack-signing-secret"

# One request through the function's own app, in a process that sees only the
# built folder and, of the libraries installed here, only those its
# requirements.txt pins: importing any other fails as it would where the folder
# is deployed (an optional import then falls back; a needed one breaks the
# request). Prints the answer, the imports refused and the modules loaded.
REQUEST_PROBE = r"""
import importlib.abc, importlib.metadata as md, json, os, re, sys

def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()

pinned = set()
for line in open("requirements.txt"):
    line = line.split("#", 1)[0].strip()
    if line:
        pinned.add(canon(re.split(r"[\[=<>!~; ]", line, maxsplit=1)[0]))
own = {name.split(".")[0] for name in os.listdir(".")}
absent = {top for top, dists in md.packages_distributions().items()
          if top not in own and not {canon(d) for d in dists} & pinned}
refused = []

class NotDeployed(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in absent:
            refused.append(fullname)
            raise ModuleNotFoundError(f"No module named {fullname!r} (not in requirements.txt)", name=fullname)
        return None

sys.meta_path.insert(0, NotDeployed())
before = set(sys.modules)
from functions_framework import create_app
request = json.loads(sys.stdin.read())
client = create_app("handle", "main.py").test_client()
reply = client.post("/", data=request["body"].encode(), headers=request["headers"],
                    content_type=request["content_type"])
loaded = sorted({name.split(".")[0] for name in sys.modules if name not in before})
print(json.dumps({"status": reply.status_code, "json": reply.get_json(silent=True), "modules": loaded,
                  "refused": sorted(set(refused))}))
"""


PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def env_for(pkg: Path, db_url: str, **extra: str) -> dict[str, str]:
    env = {**isolated_env(pkg), "DATABASE_URL": db_url, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "OPENAI_API_KEY": "", **extra}
    return {k: v for k, v in env.items() if k not in PROXIES}  # the fakes are on loopback


def run_request(pkg: Path, db_url: str, body: bytes, headers: dict[str, str],
                content_type: str = "application/json", **extra_env: str) -> dict[str, Any]:
    request = {"body": body.decode(), "headers": headers, "content_type": content_type}
    done = subprocess.run([sys.executable, "-c", REQUEST_PROBE], cwd=pkg, env=env_for(pkg, db_url, **extra_env),
                          input=json.dumps(request), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def sign(body: bytes, *, secret: str = SIGNING_SECRET, age: float = 0) -> dict[str, str]:
    timestamp = str(int(time.time() - age))
    return {"X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)}


def click(notification: UUID, user: str = "U42", action: str = "notification_useful") -> bytes:
    payload = {"type": "block_actions", "user": {"id": user, "username": "ann"},
               "actions": [{"action_id": action, "block_id": "signalsloop_feedback", "value": str(notification)}]}
    return urlencode({"payload": json.dumps(payload)}).encode()


def a_notification(seed: Seed) -> UUID:
    row = seed.conn.execute("insert into notifications (project_id, dedupe_key, text, status, importance) "
                            "values (%s, %s, 'Spec drafted', 'sent', 'high') returning id",
                            (seed.project(), f"k-{uuid4()}")).fetchone()
    assert row is not None
    return UUID(str(row["id"]))


def drafted_spec(seed: Seed) -> dict[str, Any]:
    """A drafted spec and its spec.auto_drafted event (fanned out to spec_quality)."""
    seed.configure(drain_budget_ms=0)
    project = seed.project(owner=seed.user())
    post = seed.post(project, "Dark mode please", "My eyes hurt at night")
    content = {"problem": "Night-shift users cannot read the white screens in dark rooms.",
               "evidence": [{"feedback_id": str(post), "quote": "Dark mode please", "votes": 3}],
               "user_stories": ["As an operator, I want a dark theme so that I can work at night."]}
    spec = seed.conn.execute("insert into specs (project_id, title, content, source) values (%s, %s, %s, 'agent') "
                             "returning id", (project, "Build: dark mode", Jsonb(content))).fetchone()
    assert spec is not None
    row = seed.conn.execute(
        "insert into events (type, aggregate_type, aggregate_id, payload, metadata) "
        "values ('spec.auto_drafted', 'spec', %s, %s, %s) returning *",
        (spec["id"], Jsonb({"spec_id": str(spec["id"])}),
         Jsonb({"project_id": str(project), "producer": "spec_writer"}))).fetchone()
    assert row is not None
    return dict(row)


def test_packaged_spec_quality_checks_a_spec_and_pins_all_it_loads(built: dict[str, Path], db_url: str,
                                                                    seed: Seed) -> None:
    event = drafted_spec(seed)
    body = json.dumps(WebhookPayload.for_event(json.loads(json.dumps(event, default=str)))).encode()
    result = run_request(built["spec_quality"], db_url, body, {"Authorization": f"Bearer {SECRET}"})
    assert result["status"] == 200 and result["json"]["status"] == "succeeded", result["json"]
    [check] = seed.conn.execute("select * from spec_quality_checks where spec_id = %s",
                                (event["aggregate_id"],)).fetchall()
    assert check["spec_version"] == 1 and 0 < check["score"] < 100 and check["model"] == "offline-rubric-v1"
    assert [e["type"] for e in seed.events("spec.quality_checked")] == ["spec.quality_checked"]
    assert "psycopg" in result["modules"], "the request went through the database"


def test_packaged_spec_quality_asks_openai_when_a_key_is_set(built: dict[str, Path], db_url: str,
                                                            seed: Seed) -> None:
    from functions.spec_quality.openai_review import JUDGED
    from tests.fakes.openai_server import FakeOpenAIServer

    event = drafted_spec(seed)
    body = json.dumps(WebhookPayload.for_event(json.loads(json.dumps(event, default=str)))).encode()
    with FakeOpenAIServer() as server:
        server.answer_chat(json.dumps({"verdicts": [{"item": i, "passed": True, "finding": f"fine: {i}", "fix": ""}
                                                    for i in JUDGED]}))
        result = run_request(built["spec_quality"], db_url, body, {"Authorization": f"Bearer {SECRET}"},
                             OPENAI_API_KEY="test", OPENAI_BASE_URL=server.base_url, OPENAI_MODEL="gpt-fake",
                             OPENAI_MAX_RETRIES="0")
        assert len(server.chat_requests) == 1
    assert result["status"] == 200 and result["json"]["status"] == "succeeded", result["json"]
    [check] = seed.conn.execute("select model from spec_quality_checks").fetchall()
    assert check["model"] == "gpt-fake"
    assert "openai" in result["modules"]


def test_packaged_slack_actions_records_a_click_and_pins_all_it_loads(built: dict[str, Path], db_url: str,
                                                                      seed: Seed) -> None:
    note = a_notification(seed)
    body = click(note)
    result = run_request(built["slack_actions"], db_url, body, sign(body), "application/x-www-form-urlencoded")
    assert result["status"] == 200 and result["json"]["results"] == ["recorded"], result["json"]
    assert "slack_sdk" in result["modules"], "the signature was checked by slack-sdk"
    [verdict] = seed.conn.execute("select * from notification_feedback").fetchall()
    assert (verdict["notification_id"], verdict["slack_user_id"], verdict["verdict"]) == (note, "U42", "useful")


def test_a_library_missing_from_the_requirements_breaks_the_request(built: dict[str, Path], db_url: str,
                                                                    seed: Seed, tmp_path: Path) -> None:
    """The check above can fail: the same folder without slack-sdk pinned cannot verify a click."""
    pkg = tmp_path / "slack_actions"
    shutil.copytree(built["slack_actions"], pkg)
    requirements = pkg / "requirements.txt"
    requirements.write_text("".join(line for line in requirements.read_text().splitlines(keepends=True)
                                    if not re.match(r"slack[-_]sdk\b", line, re.IGNORECASE)))
    body = click(a_notification(seed))
    result = run_request(pkg, db_url, body, sign(body), "application/x-www-form-urlencoded")
    assert result["status"] == 500 and "slack_sdk" in result["refused"]
    assert seed.conn.execute("select count(*) as n from notification_feedback").fetchone()["n"] == 0


def test_packaged_slack_actions_over_http_signed_right_wrong_old_and_repeated(
        serve: Callable[..., str], built: dict[str, Path], db_url: str, seed: Seed) -> None:
    url = serve("slack_actions", env_for(built["slack_actions"], db_url))

    def post(body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(url, content=body, timeout=10,
                          headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})

    note = a_notification(seed)
    body = click(note)
    assert post(body, {}).status_code == 401  # unsigned
    assert post(body, sign(body, secret="someone-else")).status_code == 401
    assert post(body, sign(body, age=6 * 60)).status_code == 401  # replayed: an old timestamp
    assert seed.conn.execute("select count(*) as n from notification_feedback").fetchone()["n"] == 0
    first, again = post(body, sign(body)), post(body, sign(body))
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["results"], again.json()["results"]) == (["recorded"], ["repeated"])
    assert seed.conn.execute("select count(*) as n from notification_feedback").fetchone()["n"] == 1
    malformed = b"payload=%7Bnot-json"
    assert post(malformed, sign(malformed)).status_code == 400

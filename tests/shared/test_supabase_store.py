"""SupabaseStore speaks PostgREST exactly as expected (respx fakes PostgREST)."""

from __future__ import annotations

import json
from uuid import uuid4

import httpx
import pytest
import respx

from shared.errors import StoreError
from shared.events import DomainEvent, EventMetadata
from shared.store import Claim, Write
from shared.supabase_store import SupabaseStore

URL = "https://abc.supabase.co"
KEY = "service-role-key"


@pytest.fixture
def store() -> SupabaseStore:
    return SupabaseStore(URL, KEY)


@respx.mock
def test_claim_posts_the_rpc_with_the_service_role_key(store: SupabaseStore) -> None:
    event_id, token = uuid4(), uuid4()
    route = respx.post(f"{URL}/rest/v1/rpc/claim_delivery").mock(return_value=httpx.Response(200, json=[
        {"outcome": "claimed", "delivery_id": 7, "claim_token": str(token), "attempt": 1, "max_attempts": 5}]))
    claim = store.claim(event_id, "sentiment", "worker-1")
    assert claim == Claim("claimed", 7, token, 1, 5)
    request = route.calls.last.request
    assert request.headers["apikey"] == KEY
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(request.content) == {"p_event_id": str(event_id), "p_agent": "sentiment", "p_worker": "worker-1"}


@respx.mock
def test_complete_sends_writes_and_events_in_one_rpc(store: SupabaseStore) -> None:
    route = respx.post(f"{URL}/rest/v1/rpc/complete_delivery").mock(
        return_value=httpx.Response(200, json={"completed": True, "written": 1, "published": 1}))
    project, feedback = uuid4(), uuid4()
    event = DomainEvent(id=uuid4(), type="sentiment.analyzed", aggregate_type="feedback", aggregate_id=feedback,
                        payload={"label": "negative"}, metadata=EventMetadata(project_id=project, depth=1))
    claim = Claim("claimed", 3, uuid4(), 1, 5)
    done = store.complete(claim, [Write("sentiment_analysis", [{"feedback_id": feedback, "score": -0.4}],
                                        ("feedback_id",))], [event])
    assert done.completed and done.published == 1
    body = json.loads(route.calls.last.request.content)
    assert body["p_delivery_id"] == 3 and body["p_claim_token"] == str(claim.claim_token)
    assert body["p_writes"] == [{"table": "sentiment_analysis", "rows": [{"feedback_id": str(feedback),
                                 "score": -0.4}], "on_conflict": ["feedback_id"], "update": True}]
    assert body["p_events"][0]["id"] == str(event.id)
    assert body["p_events"][0]["metadata"] == {"project_id": str(project), "depth": 1}


@respx.mock
def test_select_builds_the_postgrest_query(store: SupabaseStore) -> None:
    route = respx.get(f"{URL}/rest/v1/posts").mock(return_value=httpx.Response(200, json=[{"id": "x"}]))
    rows = store.select("posts", eq={"project_id": "p1"}, in_={"status": ["open", "planned"]},
                        columns=["id", "title"], order="created_at", descending=True, limit=10)
    assert rows == [{"id": "x"}]
    params = dict(route.calls.last.request.url.params)
    assert params == {"select": "id,title", "project_id": "eq.p1", "status": "in.(open,planned)",
                      "order": "created_at.desc", "limit": "10"}


@respx.mock
def test_postgrest_errors_map_to_the_taxonomy(store: SupabaseStore) -> None:
    respx.post(f"{URL}/rest/v1/rpc/replay_deliveries").mock(return_value=httpx.Response(400, json={
        "code": "22023", "message": "replay needs at least one filter", "details": None, "hint": None}))
    with pytest.raises(StoreError, match="at least one filter") as permanent:
        store.rpc("replay_deliveries", {})
    assert permanent.value.is_retriable is False and permanent.value.sqlstate == "22023"

    respx.post(f"{URL}/rest/v1/rpc/sweep_deliveries").mock(return_value=httpx.Response(503, json={
        "code": "PGRST000", "message": "Could not connect with the database", "details": None, "hint": None}))
    with pytest.raises(StoreError) as transient:
        store.rpc("sweep_deliveries", {})
    assert transient.value.is_retriable is True

    respx.post(f"{URL}/rest/v1/rpc/claim_delivery").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(StoreError) as unreachable:
        store.claim(uuid4(), "sentiment")
    assert unreachable.value.is_retriable is True


@respx.mock
@pytest.mark.parametrize(("status", "body", "retriable"), [
    (502, "<html>Bad gateway</html>", True),
    (504, "", True),
    (429, '{"message": "slow down"}', True),
    (400, '{"code": "23505", "message": "duplicate key", "details": null, "hint": null}', False),
    (409, '{"code": "55P03", "message": "lock not available", "details": null, "hint": null}', True),
])
def test_gateway_answers_that_are_not_postgrest_errors_are_retriable(store: SupabaseStore, status: int, body: str,
                                                                    retriable: bool) -> None:
    respx.post(f"{URL}/rest/v1/rpc/sweep_deliveries").mock(return_value=httpx.Response(status, text=body))
    with pytest.raises(StoreError) as caught:
        store.rpc("sweep_deliveries", {})
    assert caught.value.is_retriable is retriable

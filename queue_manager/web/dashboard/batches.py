"""The dashboard's batch routes (behind the same guard as the page): the newest batches, and cancelling one.

- ``GET  {path}/api/batches?limit=20``  ``{"batches": [Batch.to_dict(), ...]}`` newest first
- ``POST {path}/api/batches/cancel``    ``{"id": "<batch id>"}`` -> ``{"cancelled": "<id>"}`` (X-Requested-With, JSON)

No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at run time.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from queue_manager.bus import Batch
from queue_manager.web.dashboard.routes import NO_STORE, Current, DashboardError, DashboardRoute, json_body, refusal
from queue_manager.web.masking import passwords, scrub

batches_router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
LIMIT = 20


@batches_router.get("/api/batches", response_model=None)
async def list_batches(dashboard: Current, limit: str | None = None) -> JSONResponse:
    try:
        count = max(1, min(200, int(limit))) if limit else LIMIT
    except ValueError:
        return JSONResponse({"error": f"limit must be a whole number, got {limit!r}."}, 400, headers=NO_STORE)
    try:
        rows = await dashboard.manager.batches.store.all(count)
    except Exception as error:
        status, message = refusal(error)
        return JSONResponse({"error": scrub(message, passwords(dashboard.manager))}, status, headers=NO_STORE)
    return JSONResponse({"batches": [Batch.of(row).to_dict() for row in rows]}, headers=NO_STORE)


@batches_router.post("/api/batches/cancel", response_model=None)
async def cancel_batch(request: Request, dashboard: Current) -> JSONResponse:
    try:
        body = await json_body(request, "id")
        store = dashboard.manager.batches.store
        found = await store.find(body["id"], with_failed_ids=False)
        if found is None:
            raise DashboardError(404, f"No batch with id {body['id']!r}.")
        await store.cancel(found.id)
        answer: dict[str, Any] = {"cancelled": found.id}
        return JSONResponse(answer, headers=NO_STORE)
    except Exception as error:
        status, message = refusal(error)
        return JSONResponse({"error": scrub(message, passwords(dashboard.manager))}, status, headers=NO_STORE)

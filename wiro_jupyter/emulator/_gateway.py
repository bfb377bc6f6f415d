"""`Gateway`: what stands in front of both services, like a proxy: it counts every HTTP request and plays
the HTTP fault knobs (`http_error`, `respond`, `redirect`) before a service sees the request."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ._faults import CannedResponse, Faults, FrontFault, HttpError
from ._route_names import DIFY, route_of
from ._stats import Stats
from .dify import _errors as dify_errors
from .wiro import _envelope as wiro_envelope


class Gateway:
    def __init__(self, app: ASGIApp, faults: Faults, stats: Stats) -> None:
        self.app, self.faults, self.stats = app, faults, stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = route_of(scope["path"])
            self.stats.requests[route] += 1
            fault = self.faults.take_front(route)
            if fault is not None:
                await _answer(fault, route)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _answer(fault: FrontFault, route: str) -> Response:
    if isinstance(fault, HttpError):
        service = dify_errors if route.startswith(DIFY) else wiro_envelope
        return service.http_fault(fault.status, fault.headers)
    if isinstance(fault, CannedResponse):
        return Response(fault.body, fault.status, headers=fault.headers)
    return Response(b"", fault.status, headers={"location": fault.location})

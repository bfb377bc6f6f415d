"""The catalogue as the API shows it: the Tool/* routes (docs/protocol.md, Wiro §3, §4)."""

from __future__ import annotations

import json
from typing import Any, Protocol

from starlette.responses import Response

from ._auth import Project
from ._catalogue import Catalogue
from ._envelope import fail, ok
from ._models import ModelSpec
from ._parameters import to_int
from ._tasks import TaskEngine


class ToolHost(Protocol):
    """What the Tool/* routes need from the emulator's state."""

    @property
    def catalogue(self) -> Catalogue: ...
    @property
    def engine(self) -> TaskEngine: ...
    @property
    def base_url(self) -> str: ...


def tool_item(state: ToolHost, spec: ModelSpec) -> dict[str, Any]:
    stat = state.engine.taskstats[spec.id]
    return {
        "id": spec.id, "title": spec.title, "slugowner": spec.owner, "slugproject": spec.project,
        "cleanslugowner": spec.owner, "cleanslugproject": spec.clean, "description": spec.description,
        "seodescription": spec.description, "image": f"{state.base_url}/files/covers/{spec.clean}.jpg",
        "computingtime": spec.computingtime, "categories": list(spec.categories), "tags": [],
        "marketplace": 1, "onlymembers": "0", "averagepoint": "5.00", "commentcount": "0",
        "dynamicprice": spec.dynamicprice, "cps": spec.cps,
        "approximatelycost": (f"{spec.price:.4f}".rstrip("0").rstrip(".") or "0"),
        # strings except runcount (Wiro §3)
        "taskstat": {"runcount": stat["run"], "successcount": str(stat["success"]),
                     "errorcount": str(stat["error"]), "lastruntime": str(stat["last"])},
    }


async def tool_list(state: ToolHost, project: Project, body: dict[str, Any]) -> Response:
    start = max(0, to_int(body.get("start"), 0))
    limit = to_int(body.get("limit"), 20)
    limit = 20 if limit <= 0 else min(limit, 1000)
    search = str(body.get("search") or "").strip().lower()
    categories = body.get("categories") or []
    if isinstance(categories, str):
        categories = [c for c in categories.split(",") if c]
    wanted = {str(c).strip().lower() for c in categories if str(c).strip()}
    owner = str(body.get("slugowner") or "").strip().lower()
    models = [
        spec for spec in state.catalogue.models
        if (not search or any(search in text.lower()
                              for text in (spec.title, spec.project, spec.clean, spec.description)))
        and (not wanted or wanted & set(spec.categories))
        and (not owner or owner == spec.owner)
    ]
    sort, order = str(body.get("sort") or "").lower(), str(body.get("order") or "").upper()
    if sort in ("id", "time"):
        models.sort(key=lambda s: int(s.id), reverse=order != "ASC")
    elif sort == "title":
        models.sort(key=lambda s: s.title.lower(), reverse=order == "DESC")
    page = models[start: start + limit]
    return ok(total=len(models), tool=[tool_item(state, s) for s in page])  # `total` is a number here (Wiro §3)


def _parameters(state: ToolHost, spec: ModelSpec) -> list[dict[str, Any]]:
    groups = json.loads(json.dumps(spec.groups))
    for item in (i for g in groups for i in g["items"]):
        for option in item.get("options", []):
            if str(option.get("cover", "")).startswith("/"):
                option["cover"] = state.base_url + option["cover"]
    return groups


async def tool_detail(state: ToolHost, project: Project, body: dict[str, Any]) -> Response:
    spec = state.catalogue.find(str(body.get("slugowner") or ""), str(body.get("slugproject") or ""))
    if spec is None:
        return fail(1, "slug-owner-project-not-exist")
    item = tool_item(state, spec)
    item.update(readme=spec.readme, parameters=_parameters(state, spec), inspire=list(spec.inspire), samples=[],
                ratedusercount="0", seotitle=spec.title)
    return ok(tool=[item])  # an array with one element (Wiro §4)


async def tool_explore(state: ToolHost, project: Project, body: dict[str, Any]) -> Response:
    tools = [{"id": s.id, "cleanslugowner": s.owner, "cleanslugproject": s.clean,
              "image": f"{state.base_url}/files/covers/{s.clean}.jpg", "description": s.description,
              "categories": list(s.categories), "commentcount": "0", "ratedusercount": "0",
              "averagepoint": "5.00", "discount": None} for s in state.catalogue.models]
    return ok(explore=[{"id": "1", "title": "Featured", "url": "", "total": len(tools), "tools": tools}])

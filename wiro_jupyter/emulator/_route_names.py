"""The names of routes that fault knobs and stats use, and how a path pattern matches them.

A route is named relative to the root of its service:

- Wiro: the path after `/v1/` (`Tool/List`, `Task/Detail`, `Run/wiro/slow`), or the file path as
  served (`files/<folder>/<name>`, `File/<token>/<name>` is `/v1/File/...`).
- Dify: `dify:` and the path after the Dify API root (`dify:chat-messages`, `dify:files/upload`,
  `dify:conversations/<id>/name`), however the Dify app was reached (`/dify/v1/...`).

The prefix makes the two namespaces disjoint: a pattern starting with `dify:` matches only Dify
routes, any other pattern only Wiro routes. Within a service a pattern matches a route that equals
it, or whose leading segments (`Run`, `dify:conversations`) or trailing segments (`Task/Detail`,
`dify:stop`) it is, case-insensitively. The empty pattern matches every route of both services.
"""

from __future__ import annotations

DIFY = "dify:"


def route_of(path: str) -> str:
    """`/v1/Task/Detail` → `Task/Detail`; `/files/x/y` → `files/x/y`; `/dify/v1/chat-messages` → `dify:chat-messages`."""
    path = path.strip("/")
    if path == "dify" or path.startswith("dify/"):
        rest = path[len("dify"):].lstrip("/")
        for _ in range(2):  # the Dify app also answers under its own /v1 (see dify/_routes.py)
            if rest == "v1" or rest.startswith("v1/"):
                rest = rest[3:]
        return DIFY + rest
    return path[3:] if path.startswith("v1/") else path


def route_matches(route: str, pattern: str | None) -> bool:
    """Whether a knob's (or a count's) `pattern` names `route`; see the module docstring."""
    pattern = (pattern or "").strip("/")
    if not pattern:
        return True
    low, pat = route.lower(), pattern.lower()
    if low.startswith(DIFY) != pat.startswith(DIFY):
        return False
    if pat.startswith(DIFY):
        low, pat = low[len(DIFY):], pat[len(DIFY):].strip("/")
        if not pat:
            return True
    return low == pat or low.endswith("/" + pat) or low.startswith(pat + "/")

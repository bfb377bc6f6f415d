"""Static renderings (HTML/Markdown/PNG/text mimebundles) of tasks and text.

Model answers are untrusted: Markdown is rendered with markdown-it-py with raw
HTML disabled, then the HTML is cleaned by nh3 (a real sanitizer), so no
script or event handler from a model's answer can run. These bundles are what
saved notebooks, nbconvert, VS Code and terminal IPython show.
"""

from __future__ import annotations

import html
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._task import _TaskBase


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def sanitize_html(fragment: str) -> str:
    import nh3

    return str(nh3.clean(fragment, url_schemes={"http", "https", "data", "mailto"}))


def render_markdown(text: str) -> str:
    """Markdown → safe HTML (raw HTML in the source shows as text)."""
    return sanitize_html(_markdown().render(text or ""))


def task_status_line(task: _TaskBase) -> str:
    elapsed = task.elapsed
    timing = f" in {elapsed:.1f} s" if elapsed is not None else ""
    cost = f", ${task.cost:.4f}" if task.cost else ""
    if not task.done:
        return f"{task.model} · task {task.id} · {task.status}"
    outcome = "done" if task.ok else ("cancelled" if task.status == "task_cancel" else "failed")
    return f"{task.model} · task {task.id} · {outcome}{timing}{cost}"


def task_bundle(task: _TaskBase) -> dict[str, Any]:
    """Outputs of a task as one mimebundle: images/audio/video/text in HTML, PNG of the first image, text."""
    from ._outputs import output_bundle

    status = task_status_line(task)
    parts = [f'<div class="wiro-task-status" style="color:#555;font-size:90%">{html.escape(status)}</div>']
    text_lines = [status]
    bundle: dict[str, Any] = {}
    if task.error and task.done:
        parts.append(f'<pre style="color:#b00020">{html.escape(task.error)}</pre>')
        text_lines.append(f"error: {task.error}")
    if task.thinking:
        parts.append(
            f'<details><summary>thinking</summary><div style="color:#666">{render_markdown(task.thinking)}</div></details>'
        )
    if task.text:
        parts.append(f'<div class="wiro-answer">{render_markdown(task.text)}</div>')
        text_lines.append(task.text)
        bundle["text/markdown"] = task.text
    for output in task.files:
        sub = output_bundle(output)
        parts.append(sub.get("text/html", html.escape(sub["text/plain"])))
        text_lines.append(repr(output))
        if "image/png" in sub and "image/png" not in bundle:
            bundle["image/png"] = sub["image/png"]
    bundle["text/html"] = "\n".join(parts)
    bundle["text/plain"] = "\n".join(text_lines)
    return bundle

"""`%wiro` (line) and `%%wiro` (cell): a thin parser over the Python API.

Every feature is a Python call: `%%wiro run` is `Wiro().run(slug, params, wait=False)`
plus `task.wait_async()` / `task.wait()`, `%wiro models` is `Wiro().models()`, and so on.
See `HELP` (shown by `%wiro?` and `%%wiro?`) for the user-facing description.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from ._parse import (
    RunRequest,
    convert_value,
    interpolate,
    parse_assignments,
    parse_body,
    parse_run,
    parse_subcommand,
    subcommand_overview,
)
from ._transform import publish_result, register_async_cell, unregister_async_cell

if TYPE_CHECKING:
    from .._client import Wiro
    from .._models import Model
    from .._task import Task

HELP = """Wiro's cloud AI models from IPython: run them, list them, follow and recover tasks.

%%wiro run OWNER/MODEL [name=value ...] [-o VAR] [--no-wait] [--form] [--save DIR] [--timeout S]
    Run a model. The cell body is
      - plain text: the model's main text parameter (its `prompt`, else its first
        textarea/text parameter). Python variables are interpolated: {name}, {obj.attr},
        {d['key']}, {In[3]} (the source of cell 3), {Out[3]} (its result; a Task gives its
        text answer). Unknown names stay as written. Nothing is evaluated: only names,
        attributes and indexes. Write {{ and }} for a literal { and }.
      - a JSON object: parameters, e.g. {"prompt": "a cat", "width": 768}
        (a body that starts with {" must be valid JSON; it is not interpolated).
    name=value pairs on the line set parameters too (and win over the body). Quote values
    with spaces: prompt="a red fox". Values are converted to the parameter's type by the
    Python API's own validation (range/number -> number, select -> checked against its
    options, checkbox -> bool); [..], {..}, true/false/null are read as JSON (not for text
    parameters); file parameters take a path or URL (several: comma-separated or a JSON list).
    {name} works in values too.
    Options:
      -o VAR        store the Task in VAR (the cell's result is the Task too: `_`, Out[N])
      --no-wait     return at once; the task stays live and its status bar keeps updating
      --form        show the model's form prefilled with these values instead of running
      --save DIR    save the output files into DIR
      --timeout S   stop waiting after S seconds (the task keeps running; %wiro recover ID)
    While the cell waits, a live status bar shows the stages; its Cancel button works, and
    interrupting the kernel stops the paid task on the server. Outputs (images, audio, video,
    text, LLM answers as Markdown) then display inline, with provenance in the output's
    metadata["wiro"]: model, task id, parameters, elapsed seconds, cost. Nothing is sent
    when a parameter is wrong; a failed task fails the cell (so pipelines stop).

%wiro SUBCOMMAND
{overview}

Examples:
    %load_ext wiro_jupyter
    %wiro emulator start                 # synthetic models, no account (remove for the real service)
    %wiro models image
    %wiro info wiro/text-to-image
    %%wiro run wiro/text-to-image width=768 -o pic
    a lighthouse at dawn, {style}

Tab completes subcommands, options and (once listed or used) model slugs and parameter names.
The same in Python: wiro_jupyter.Wiro().run("wiro/text-to-image", prompt="...").
"""


# --------------------------------------------------------------------------------------
# session state (for completion and %wiro config)


@dataclass
class _State:
    key_source: str = "environment"
    emulator_env: dict[str, str | None] | None = None  # the environment before %wiro emulator start


STATE = _State()
KNOWN_SLUGS: set[str] = set()
KNOWN_MODELS: dict[str, Model] = {}
_ENV_NAMES = ("WIRO_API_KEY", "WIRO_API_SECRET", "WIRO_API_URL", "WIRO_SOCKET_URL", "WBOT_API_URL", "WBOT_API_KEY")


def remember_model(model: Model) -> None:
    KNOWN_SLUGS.add(model.slug)
    KNOWN_MODELS[model.slug.lower()] = model


def require_client() -> Wiro:
    """The session's client; a missing key is a short error with the fix (not a 401 later)."""
    from .._client import default_client
    from .._config import Settings
    from .._exceptions import AuthenticationError

    if not Settings.resolve().api_key:
        raise AuthenticationError(
            "No Wiro API key is set.",
            hint="Run %wiro login (it asks for the key), set WIRO_API_KEY, "
            "or try %wiro emulator start for synthetic models without an account.",
        )
    return default_client()


def _in_kernel(shell: Any) -> bool:
    return getattr(shell, "kernel", None) is not None


# --------------------------------------------------------------------------------------
# provenance and display


def provenance(task: Any, **extra: Any) -> dict[str, Any]:
    """`{"wiro": {...}}` for an output's metadata: what produced it. Never a secret."""
    from .._exceptions import redact

    info: dict[str, Any] = {"model": task.model, "task_id": task.id, "status": task.status}
    info["parameters"] = task.parameters  # journal-safe: files as name + hash
    if task.done and task.elapsed is not None:
        info["elapsed_s"] = round(float(task.elapsed), 3)
    if task.cost is not None:
        info["cost"] = task.cost
    info.update(extra)
    # JSON-safe, and every registered secret masked whatever field it hid in.
    return {"wiro": json.loads(redact(json.dumps(info, default=str)))}


def task_mimebundle(task: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """IPython formatter for Task values (`%wiro task`, `%wiro recover`, `task` in a cell): bundle + provenance."""
    result = task._repr_mimebundle_()
    data, metadata = result if isinstance(result, tuple) else (result, {})
    return data, {**metadata, **provenance(task)}


def _status_bundle(task: Any, note: str = "") -> dict[str, Any]:
    from .._render import status_bundle, task_status_line

    return status_bundle(task_status_line(task) + (f" — {note}" if note else ""))


class _Live:
    """The live display of one task in a kernel, replaced in place by static outputs when the task ends.

    With a widget front end it is a `TaskView` (status bar with Cancel/Kill, outputs
    below), displayed from its mimebundle (widget view + static fallback) so that the
    display carries the provenance metadata. When the task has ended nothing is live
    any more, so the display is updated to the view's *static* bundle (HTML, PNG, text:
    no widget view) with the final provenance (elapsed time, cost). A saved notebook
    then shows the outputs everywhere: JupyterLab without a kernel (where a widget view
    whose model is gone shows "Error displaying widget: model not found"), nbconvert
    HTML (which picks the widget view over its fallback), GitHub, VS Code. Without
    widgets it is a status line replaced by the outputs.
    """

    def __init__(self, task: Any) -> None:
        from IPython.display import display

        self.task = task
        self.view = _task_view(task)
        if self.view is not None:
            data, metadata = _split_bundle(self.view._repr_mimebundle_())
        else:
            data, metadata = _status_bundle(task, "running"), {}
        self.handle = display(data, raw=True, metadata={**metadata, **provenance(task)}, display_id=True)

    def final(self, *, failed: bool = False, timeout: float = 30.0) -> tuple[dict[str, Any], dict[str, Any]]:
        """The final bundle (blocks until the view has its final state; call it off the kernel's loop)."""
        if self.view is not None:
            self.view.wait(timeout)
            return self.view.static_bundle(), provenance(self.task)
        bundle = _status_bundle(self.task) if failed else _outputs(self.task, None)[0]
        return bundle, provenance(self.task)

    def show(self, final: tuple[dict[str, Any], dict[str, Any]]) -> None:
        self.handle.update(final[0], raw=True, metadata=final[1])

    def show_when_done(self) -> None:
        """For --no-wait: refresh the display from a thread once the task has ended."""
        threading.Thread(target=self._refresh_when_done, name="wiro-magic-final", daemon=True).start()

    def _refresh_when_done(self) -> None:
        # No parent header of our own: ipykernel then uses the cell running now, and headless
        # runners (nbclient) apply a display update only while they listen to that cell.
        # (JupyterLab routes updates by display id to the cell that made the display.)
        with contextlib.suppress(BaseException):
            self.task.wait()
        with contextlib.suppress(Exception):  # the live widget already shows the outcome; this is the saved copy
            self.show(self.final(failed=not self.task.ok, timeout=120.0))


def _split_bundle(result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if isinstance(result, tuple):
        return dict(result[0] or {}), dict(result[1] or {})
    return dict(result or {}), {}


def _task_view(task: Any) -> Any:
    """A TaskView where a widget front end may render it; None without widgets."""
    try:
        from ..widgets import TaskView, has_widget_frontend
    except ImportError:
        return None
    return TaskView(task) if has_widget_frontend() else None


def _show_live(shell: Any, task: Any) -> _Live | None:
    """The live status display in a kernel; None elsewhere (terminal IPython prints the result at the end)."""
    return _Live(task) if _in_kernel(shell) else None


def _outputs(task: Any, save: str | None) -> tuple[dict[str, Any], list[Any]]:
    """Save (if asked) and render the outputs (downloads happen here; safe in a worker thread)."""
    from .._render import task_bundle

    paths = task.save(save) if save else []
    return task_bundle(task), paths


def _report_saved(paths: list[Any], directory: str) -> None:
    names = ", ".join(p.name for p in paths[:6]) + (" …" if len(paths) > 6 else "")
    print(
        f"Saved {len(paths)} file{'s' if len(paths) != 1 else ''} to {directory}: {names}"
        if paths
        else f"Nothing to save to {directory}: the task has no output files."
    )


# --------------------------------------------------------------------------------------
# %%wiro run: plan, start, wait (awaited or blocking), finish


@dataclass
class _Plan:
    request: RunRequest
    model: Model
    params: dict[str, Any]
    client: Wiro


def _cell_line(line: str) -> str:
    words = line.split(None, 1)
    if words and words[0] == "run":
        return words[1] if len(words) > 1 else ""
    if words and "/" in words[0] and "=" not in words[0]:
        return line  # `%%wiro OWNER/MODEL ...` is short for `%%wiro run OWNER/MODEL ...`
    raise UsageError(
        "A %%wiro cell runs a model: %%wiro run OWNER/MODEL [name=value ...] [options], with the prompt "
        "(or a JSON object) as the cell body. Other subcommands are line magics: %wiro models, %wiro info …"
    )


def _plan(shell: Any, line: str, body: str | None, *, prog: str) -> _Plan:
    request = parse_run(line, prog=prog, namespace=shell.user_ns)
    json_params, text = parse_body(body)
    if request.no_wait and (request.save or request.timeout):
        raise UsageError("--no-wait returns before there are outputs: drop --save/--timeout, or call task.save(DIR) later.")
    if request.form and (request.no_wait or request.save or request.timeout):
        raise UsageError("--form only shows the form; it does not run, wait or save.")
    client = require_client()
    model = client.model(request.slug)
    remember_model(model)
    params: dict[str, Any] = dict(json_params or {})
    if text is not None:
        main = model.main_text_parameter
        if main is None:
            raise UsageError(
                f"{model.slug} has no text parameter for a plain-text body; set its parameters with "
                f"name=value on the line or a JSON object body (%wiro info {model.slug} lists them)."
            )
        params[main.id] = interpolate(text, shell.user_ns)
    by_id = {p.id: p for p in model.parameters}
    for name, raw in request.params.items():
        params[name] = convert_value(raw, by_id.get(name))
    return _Plan(request, model, params, client)


def _show_form(shell: Any, plan: _Plan, *, show: bool = True) -> Any:
    """`--form` / `%wiro form`: the generated form, prefilled, with values checked like a run would."""
    from IPython.display import display

    from .._exceptions import WiroError
    from .._params import coerce_values

    values = coerce_values(plan.model, plan.params)
    try:
        from ..widgets import form
    except ImportError:
        raise WiroError(
            "The form needs wiro_jupyter.widgets (ipywidgets and anywidget).",
            hint="Install them (pip install ipywidgets anywidget) or run the model with %%wiro run.",
        ) from None
    widget = form(plan.model.slug, client=plan.client, **values)
    if plan.request.output:
        shell.user_ns[plan.request.output] = widget
    if show:
        parameters = json.loads(json.dumps(values, default=str))
        display(widget, metadata={"wiro": {"model": plan.model.slug, "parameters": parameters}})
    return widget


def _start(shell: Any, plan: _Plan) -> tuple[Task, Any]:
    task = plan.client.run(plan.model.slug, plan.params, wait=False)
    if plan.request.output:
        shell.user_ns[plan.request.output] = task
    return task, _show_live(shell, task)


def _detach(shell: Any, plan: _Plan, task: Task, live: _Live | None) -> Task:
    if live is not None:
        live.show_when_done()
    else:
        name = plan.request.output or "_"
        print(
            f"Task {task.id} ({task.model}) runs in the background. {name}.wait() waits for it; "
            f"then display {name} for its outputs."
        )
    return task


def _interrupted(task: Task) -> Exception:
    from .._exceptions import TaskCancelledError

    if task.status == "task_cancel":
        message = f"The cell was interrupted; task {task.id} ({task.model}) was stopped on the server."
    else:
        message = f"The cell was interrupted; task {task.id} ({task.model}) is {task.status} (see the note above)."
    return TaskCancelledError(message, task=task, hint="")


def _finish(task: Task, live: _Live | None, plan: _Plan, *, failed: bool) -> Any:
    """Save (if asked) and compute the final display (blocking: downloads; run off the kernel's loop).

    Returns what `_show` needs. A failed task shows its status line (the error is the cell's error).
    """
    paths = task.save(plan.request.save) if (plan.request.save and not failed) else None
    if live is not None:
        final = live.final(failed=failed)
    elif failed:
        final = (_status_bundle(task), provenance(task))
    else:
        final = (_outputs(task, None)[0], provenance(task))
    return final, paths


def _show(live: _Live | None, plan: _Plan, final: Any, paths: list[Any] | None) -> None:
    from IPython.display import display

    if paths is not None and plan.request.save:
        _report_saved(paths, plan.request.save)
    if live is not None:
        live.show(final)
    else:  # outside a kernel there was no live display: the outputs appear now
        display(final[0], raw=True, metadata=final[1])


async def run_cell_async(shell: Any, line: str, body: str) -> Any:
    """The awaited `%%wiro` cell (see _transform): the kernel stays free while the task runs."""
    from .._exceptions import TaskFailedError, WiroTimeoutError

    plan = _plan(shell, _cell_line(line), body, prog="%%wiro run")
    if plan.request.form:
        return _show_form(shell, plan)
    task, live = _start(shell, plan)
    if plan.request.no_wait:
        return _detach(shell, plan, task, live)
    try:
        await task.wait_async(plan.request.timeout)  # wakes the loop, so an interrupt lands at once
    except WiroTimeoutError:
        _detach(shell, plan, task, live)  # it keeps running: the display still gets its final state
        raise
    except asyncio.CancelledError:
        _show(live, plan, *await asyncio.to_thread(_finish, task, live, plan, failed=True))
        raise _interrupted(task) from None
    except TaskFailedError:
        _show(live, plan, *await asyncio.to_thread(_finish, task, live, plan, failed=True))
        raise
    _show(live, plan, *await asyncio.to_thread(_finish, task, live, plan, failed=False))
    return task


def run_cell_blocking(shell: Any, line: str, body: str | None, *, prog: str = "%%wiro run") -> Any:
    """`%%wiro` where the cell cannot be awaited, and `%wiro run`: waits in this thread (Ctrl-C stops the task)."""
    from .._exceptions import TaskFailedError, WiroTimeoutError

    plan = _plan(shell, line, body, prog=prog)
    if plan.request.form:
        return _show_form(shell, plan)
    task, live = _start(shell, plan)
    if plan.request.no_wait:
        return _detach(shell, plan, task, live)
    try:
        task.wait(plan.request.timeout)
    except WiroTimeoutError:
        _detach(shell, plan, task, live)  # it keeps running: the display still gets its final state
        raise
    except KeyboardInterrupt:
        _show(live, plan, *_finish(task, live, plan, failed=True))
        raise _interrupted(task) from None
    except TaskFailedError:
        _show(live, plan, *_finish(task, live, plan, failed=True))
        raise
    _show(live, plan, *_finish(task, live, plan, failed=False))
    return task


# --------------------------------------------------------------------------------------
# %wiro subcommands


def _sub_help(shell: Any, args: Any) -> None:
    print(HELP.replace("{overview}", subcommand_overview()))


def _sub_models(shell: Any, args: Any) -> Any:
    found = require_client().models(" ".join(args.search) or None, categories=args.category, start=args.start, limit=args.limit)
    for model in found:
        KNOWN_SLUGS.add(model.slug)
    return found


def _sub_info(shell: Any, args: Any) -> Any:
    model = require_client().model(args.slug)
    remember_model(model)
    return model


def _sub_form(shell: Any, args: Any) -> Any:
    client = require_client()
    model = client.model(args.slug)
    remember_model(model)
    by_id = {p.id: p for p in model.parameters}
    raw = parse_assignments(list(args.assignments), "form")
    params = {name: convert_value(value, by_id.get(name)) for name, value in raw.items()}
    request = RunRequest(slug=model.slug, form=True)
    return _show_form(shell, _Plan(request, model, params, client), show=False)


def _sub_run(shell: Any, args: Any) -> None:
    """`%wiro run ...` is a `%%wiro run` cell without a body (it waits in place; -o VAR keeps the Task)."""
    publish_result(shell, run_cell_blocking(shell, args.rest, None, prog="%wiro run"))


def _sub_task(shell: Any, args: Any) -> Any:
    return require_client().task(args.token)


def _sub_cancel(shell: Any, args: Any) -> None:
    require_client().cancel(args.token)
    print(f"Asked the server to cancel task {args.token} (Task/Cancel; a task that already runs needs %wiro kill).")


def _sub_kill(shell: Any, args: Any) -> None:
    require_client().kill(args.token)
    print(f"Asked the server to stop task {args.token} (Task/Kill).")


def _sub_tasks(shell: Any, args: Any) -> Any:
    from .._client import tasks

    return tasks(args.limit, model=args.model)


def _sub_recover(shell: Any, args: Any) -> Any:
    from .._client import recover

    require_client()
    return recover(args.id)


def _sub_upload(shell: Any, args: Any) -> Any:
    path = os.path.expanduser(args.path)
    if not os.path.isfile(path):
        raise UsageError(f"There is no file {args.path!r} to upload.")
    return require_client().upload(path)


def _sub_login(shell: Any, args: Any) -> None:
    import getpass

    from .._config import Settings, mask
    from .._credentials import credentials_path, save_credentials
    from .._exceptions import register_secret

    key = getpass.getpass("Wiro API key: ").strip()
    if not key:
        raise UsageError("No API key entered; nothing changed.")
    register_secret(key)
    secret = getpass.getpass("Wiro API secret (leave empty for an API-key-only project): ").strip()
    register_secret(secret)
    os.environ["WIRO_API_KEY"] = key
    if secret:
        os.environ["WIRO_API_SECRET"] = secret
    else:
        os.environ.pop("WIRO_API_SECRET", None)
    STATE.key_source = "%wiro login"
    store = bool(args.store)
    if not store and not args.no_store:
        answer = input(f"Save them in {credentials_path()} (readable only by you)? [y/N] ")
        store = answer.strip().lower() in ("y", "yes")
    settings = Settings.resolve()
    print(f"Logged in for this kernel session: key {mask(key)}, {settings.auth_mode} authentication, {settings.api_url}.")
    if store:
        path = save_credentials(key, secret or None)
        STATE.key_source = f"%wiro login (saved in {path})"
        print(f"Saved in {path} (mode 600); %load_ext wiro_jupyter reads it when WIRO_API_KEY is not set.")
    if STATE.emulator_env is not None:
        print("Note: this session still points at the local emulator; %wiro emulator stop switches back.")


def _sub_logout(shell: Any, args: Any) -> None:
    from .._credentials import credentials_path, delete_credentials

    os.environ.pop("WIRO_API_KEY", None)
    os.environ.pop("WIRO_API_SECRET", None)
    STATE.key_source = "environment"
    print("Forgot the API key and secret of this session.")
    if args.forget:
        if delete_credentials():
            print(f"Deleted {credentials_path()}.")
        else:
            print(f"There was no {credentials_path()}.")


def _config_rows() -> list[tuple[str, str]]:
    from .._config import Settings, mask
    from .._credentials import credentials_path
    from .._journal import Journal

    settings = Settings.resolve()
    emulator = _running_emulator()
    source = STATE.key_source if settings.api_key else "-"
    if emulator is not None and settings.api_url == emulator.api_url:
        where = f"the local emulator at {emulator.base_url} (synthetic outputs)"
    elif emulator is not None:
        where = f"running at {emulator.base_url}, not in use"
    else:
        where = "not running"
    creds = credentials_path()
    return [
        ("API URL", settings.api_url),
        ("socket URL", settings.socket_url),
        ("authentication", settings.auth_mode if settings.api_key else "none (no key)"),
        ("API key", f"{mask(settings.api_key)}" + (f" (from {source})" if settings.api_key else "")),
        ("API secret", mask(settings.api_secret)),
        ("credentials file", f"{creds} ({'present' if creds.exists() else 'absent'})"),
        ("journal", str(Journal().path)),
        ("emulator", where),
        ("Wbot URL", os.environ.get("WBOT_API_URL") or "(not set)"),
        ("Wbot key", mask(os.environ.get("WBOT_API_KEY"))),
    ]


def _sub_config(shell: Any, args: Any) -> None:
    from IPython.display import display

    from .._exceptions import redact
    from .._render import table_bundle

    rows = [(name, redact(value)) for name, value in _config_rows()]  # before escaping, so every secret is found
    text = "\n".join(f"{name:<17} {value}" for name, value in rows)
    display(table_bundle(("setting", "value"), rows, text), raw=True)


def _running_emulator() -> Any:
    from .. import _emulated

    return getattr(_emulated, "_running", None)


def _sub_emulator(shell: Any, args: Any) -> None:
    from IPython.display import display

    from .._emulated import stop_emulator, use_emulator
    from .._render import escape, html_bundle

    if args.action == "status":
        emulator = _running_emulator()
        print(f"The local emulator runs at {emulator.base_url}." if emulator else "The local emulator is not running.")
        return
    if args.action == "stop":
        if _running_emulator() is None:
            print("The local emulator is not running.")
            return
        stop_emulator()
        previous = STATE.emulator_env or {}
        for name in _ENV_NAMES:
            value = previous.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        STATE.emulator_env = None
        from .._config import Settings

        print(f"Stopped the local emulator; this session uses {Settings.resolve().api_url} again.")
        return
    if STATE.emulator_env is None:
        STATE.emulator_env = {name: os.environ.get(name) for name in _ENV_NAMES}
    emulator = use_emulator(stage_delay=args.delay, quiet=True)
    STATE.key_source = "%wiro emulator start"
    text = (
        f"Local Wiro emulator at {emulator.base_url}: models and outputs are SYNTHETIC (no account, no network, "
        "no cost). Remove %wiro emulator start (or run %wiro emulator stop) to use the real service."
    )
    notice = (
        '<div style="border-left:4px solid #e0a800;background-color:#fff8e1;color:#5d4200;padding:6px 10px">'
        f"&#9888; <b>Local Wiro emulator</b> at <code>{escape(emulator.base_url)}</code>: "
        "models and outputs are <b>synthetic</b> (no account, no network, no cost). "
        "Remove <code>%wiro emulator start</code> (or run <code>%wiro emulator stop</code>) "
        "to use the real service.</div>"
    )
    display(html_bundle(notice, text), raw=True, metadata={"wiro": {"emulator": True}})


_SUBCOMMANDS = {
    "help": _sub_help,
    "models": _sub_models,
    "info": _sub_info,
    "form": _sub_form,
    "run": _sub_run,
    "task": _sub_task,
    "cancel": _sub_cancel,
    "kill": _sub_kill,
    "tasks": _sub_tasks,
    "recover": _sub_recover,
    "upload": _sub_upload,
    "login": _sub_login,
    "logout": _sub_logout,
    "config": _sub_config,
    "emulator": _sub_emulator,
}


def run_line(shell: Any, line: str) -> Any:
    namespace = None if line.strip().startswith(("login", "logout")) else shell.user_ns
    name, args = parse_subcommand(line, namespace=namespace)
    return _SUBCOMMANDS[name](shell, args)


# --------------------------------------------------------------------------------------
# the magics


@magics_class
class WiroMagics(Magics):
    @no_var_expand
    @line_cell_magic
    def wiro(self, line: str, cell: str | None = None) -> Any:
        if cell is None:
            return run_line(self.shell, line)
        publish_result(self.shell, run_cell_blocking(self.shell, _cell_line(line), cell))
        return None

    wiro.__doc__ = HELP.replace("{overview}", subcommand_overview())


# --------------------------------------------------------------------------------------
# completion

_RUN_OPTIONS = ["-o", "--no-wait", "--form", "--save", "--timeout"]
_SUB_OPTIONS = {
    "models": ["--category", "--limit", "--start"],
    "tasks": ["--limit", "--model"],
    "login": ["--store", "--no-store"],
    "logout": ["--forget"],
    "emulator": ["start", "stop", "status", "--delay"],
}


def _slugs() -> list[str]:
    return sorted(KNOWN_SLUGS)


def _param_words(slug: str) -> list[str]:
    model = KNOWN_MODELS.get(slug.lower())
    return [f"{p.id}=" for p in model.parameters] if model else []


def _task_ids() -> list[str]:
    try:
        from .._journal import Journal

        return [e.task_id for e in Journal().recent(20) if e.task_id]
    except Exception:  # completion must never raise
        return []


def complete(shell: Any, event: Any) -> list[str]:
    """Custom completer for `%wiro` / `%%wiro` (IPython filters by the typed prefix)."""
    text = event.text_until_cursor or event.line or ""
    words = text.split()
    if not words:
        return []
    if text[-1:].isspace():
        words.append("")
    command, args = words[0], words[1:]
    if command.startswith("%%"):
        if len(args) <= 1:
            return ["run", *_slugs()]
        args = args[1:] if args[0] == "run" else args
        return _run_words(args)
    if len(args) <= 1:
        return list(_SUBCOMMANDS)
    sub, rest = args[0], args[1:]
    if sub == "run":
        return _run_words(rest)
    if sub in ("info", "form"):
        return _slugs() if len(rest) == 1 else _param_words(rest[0])
    if sub in ("task", "cancel", "kill", "recover") and len(rest) == 1:
        return _task_ids()
    if sub == "tasks" and len(rest) >= 2 and rest[-2] in ("--model", "-m"):
        return _slugs()
    return _SUB_OPTIONS.get(sub, [])


def _run_words(args: list[str]) -> list[str]:
    """Words after `run`: the slug first, then its parameters (`name=`) and options."""
    if len(args) <= 1:
        return _slugs()
    if args[-2:-1] in (["--save"], ["--timeout"], ["-o"]):
        return []
    return [*_param_words(args[0]), *_RUN_OPTIONS]


# --------------------------------------------------------------------------------------
# load / unload (called by wiro_jupyter.magics)

_TASK_TYPE = "wiro_jupyter._task._TaskBase"


def load(shell: Any) -> None:
    shell.register_magics(WiroMagics)
    register_async_cell("wiro", run_cell_async)
    unload_completers(shell)
    shell.set_hook("complete_command", complete, str_key="%wiro")
    shell.set_hook("complete_command", complete, str_key="%%wiro")
    formatter = shell.display_formatter.mimebundle_formatter
    formatter.pop(_TASK_TYPE, None)
    formatter.for_type_by_name(*_TASK_TYPE.rsplit(".", 1), task_mimebundle)


def unload_completers(shell: Any) -> None:
    dispatch = getattr(getattr(shell, "Completer", None), "custom_completers", None)
    for key in ("%wiro", "%%wiro"):
        if dispatch is not None:
            dispatch.strs.pop(key, None)


def unload(shell: Any) -> None:
    unregister_async_cell("wiro")
    unload_completers(shell)
    shell.display_formatter.mimebundle_formatter.pop(_TASK_TYPE, None)
    manager = shell.magics_manager
    manager.magics["line"].pop("wiro", None)
    manager.magics["cell"].pop("wiro", None)
    manager.registry.pop("WiroMagics", None)


def credentials_from_file() -> None:
    """At load: without WIRO_API_KEY in the environment, use the key saved by `%wiro login`."""
    from .._credentials import credentials_path, load_credentials
    from .._exceptions import register_secret

    if os.environ.get("WIRO_API_KEY"):
        return
    found, warning = load_credentials()
    if warning:
        sys.stderr.write(warning + "\n")
    if not found:
        return
    register_secret(found["api_key"])
    register_secret(found.get("api_secret"))
    os.environ["WIRO_API_KEY"] = found["api_key"]
    if found.get("api_secret"):
        os.environ["WIRO_API_SECRET"] = found["api_secret"]
    STATE.key_source = str(credentials_path())

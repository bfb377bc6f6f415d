"""`form("owner/slug")`: an input form built from a model's parameters, with a Run button.

One field per parameter (`_fields`), in the model's groups and order; `advanced` parameters fold
into a collapsed "Advanced options" section of their group. Validation is the protocol layer's own
(`prepare_run`): the form maps each message to the field it names. `code()` and `python()` give
the same run as a `%%wiro run` cell and as a Python call, to move from clicking to code.
"""

from __future__ import annotations

import keyword
import shlex
import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .._exceptions import FieldProblem, ValidationError, WiroError
from .._models import Model
from .._params import prepare_run, url_companion
from .._render import escape, html_bundle
from ._fields import Field, FileField, Styles, Upload, css_id, make_field
from ._frontend import merge_bundle

if TYPE_CHECKING:
    from .._client import Wiro
    from .._task import Task
    from ._view import TaskView

__all__ = ["RunForm", "form"]


class RunForm(w.VBox):
    """An input form for one model. See `form()`.

    `values` (dict) · `validate()` → {field id: message} · `run()` → Task · `task` (the last one) ·
    `code()` → the equivalent `%%wiro run` cell · `python()` → the equivalent Python call.
    """

    def __init__(self, model: Model, client: Wiro | None = None, **values: Any) -> None:
        self.model = model
        self._client = client
        self.task: Task | None = None  # the last one
        self.view: TaskView | None = None  # the TaskView of the last run
        self._styles = Styles()
        self._live = False  # re-validate on every change once a run was refused
        self._busy = threading.Lock()
        self.fields: dict[str, Field] = {}
        self._companions: dict[str, str] = {}  # companion id -> file field id
        self._boxes: list[tuple[w.Box, list[w.Widget | Field]]] = []  # a box and its items: widgets and fields
        sections = self._build_fields()

        st, auto = self._styles, self._styles.layout("auto")
        head = w.HTML(self._header_html(), style=st.style(w.HTML), layout=auto, _dom_classes=("wiro-form-header",))
        self.run_button = w.Button(
            description="Run",
            button_style="primary",
            icon="play",
            layout=auto,
            tooltip=f"Run {model.slug} with these values",
            style=st.style(w.Button),
            _dom_classes=("wiro-run",),
        )
        self.run_button.on_click(self._on_run_click)
        self.code_button = w.ToggleButton(
            description="Code",
            icon="code",
            value=False,
            layout=auto,
            tooltip="Show the equivalent %%wiro cell and Python call",
            _dom_classes=("wiro-code-toggle",),
        )
        self.code_button.observe(self._on_code_toggle, names="value")
        self.summary = w.HTML(style=st.style(w.HTML), layout=auto, _dom_classes=("wiro-form-summary",))
        self.code_view = w.HTML(style=st.style(w.HTML), layout=auto, _dom_classes=("wiro-code",))
        self.result = w.VBox(layout=auto, _dom_classes=("wiro-form-result",))
        footer = w.HBox([self.run_button, self.code_button, self.summary], layout=st.layout("row"))
        super().__init__(children=[head, *sections, footer, self.code_view, self.result], _dom_classes=("wiro-form",))
        for field in self.fields.values():
            for widget in field.value_widgets():
                widget.observe(self._on_change, names="value")
        if values:
            self.set_values(**values)

    # -- building --------------------------------------------------------------------------------
    def _build_fields(self) -> list[w.Widget]:
        params = self.model.parameters
        file_ids = {p.id for p in params if p.is_file}
        for p in params:
            if p.is_file:
                companion = url_companion(self.model, p)
                if companion and companion not in file_ids:
                    self._companions[companion] = p.id
        groups: dict[str, list[Field]] = {}
        for p in params:
            if p.id in self._companions:
                continue  # folded into its file field's URL box
            field = make_field(p, self._styles)
            if isinstance(field, FileField):
                companion_id = next((c for c, f in self._companions.items() if f == p.id), None)
                field.companion = self.model.parameter(companion_id) if companion_id else None
            self.fields[p.id] = field
            groups.setdefault(p.group, []).append(field)
        sections: list[w.Widget] = []
        for title, fields in groups.items():
            children: list[w.Widget | Field] = []  # widgets and fields, in order
            if title:
                header = w.HTML(
                    f"<b>{escape(title)}</b>",
                    style=self._styles.style(w.HTML),
                    layout=self._styles.layout("auto"),
                    _dom_classes=("wiro-group-title",),
                )
                children.append(header)
            children.extend(f for f in fields if not f.param.advanced)
            advanced = [f for f in fields if f.param.advanced]
            if advanced:
                inner = w.VBox(_flatten(advanced), layout=self._styles.layout("auto"))
                self._boxes.append((inner, advanced))
                acc = w.Accordion(
                    children=[inner],
                    titles=("Advanced options",),
                    selected_index=None,
                    layout=self._styles.layout("auto"),
                    _dom_classes=("wiro-advanced",),
                )
                children.append(acc)
            classes = ("wiro-group", f"wiro-group-{css_id(title or 'inputs')}")
            # Built with their children: setting them afterwards would be one more message per box.
            section = w.VBox(_flatten(children), layout=self._styles.layout("group"), _dom_classes=classes)
            self._boxes.append((section, children))
            sections.append(section)
        return sections

    def _relayout(self) -> None:
        """After a note widget was added to a field: put it in its box."""
        for box, items in self._boxes:
            children = _flatten(items)
            if children != box.children:
                box.children = children

    def _header_html(self) -> str:
        m = self.model
        title = escape(m.title or m.slug)
        price = f" · ${m.price:g}/{escape(m.price_method or 'run')}" if m.price is not None else ""
        desc = escape(m.description.strip()[:300])
        return (
            f'<div><b style="font-size:115%">{title}</b> <code>{escape(m.slug)}</code>'
            f'<span style="color:#6b7280">{price}</span>'
            + (f'<div style="color:#6b7280">{desc}</div>' if desc else "")
            + "</div>"
        )

    # -- values ----------------------------------------------------------------------------------
    @property
    def values(self) -> dict[str, Any]:
        """The current values, as `Wiro().run()` takes them (unset fields left out)."""
        out: dict[str, Any] = {}
        for pid, field in self.fields.items():
            value = field.value
            if value is not None:
                out[pid] = value
        return out

    @values.setter
    def values(self, values: dict[str, Any]) -> None:
        self.set_values(**values)

    def set_values(self, **values: Any) -> None:
        unknown = [k for k in values if k not in self.fields and k not in self._companions]
        if unknown:
            import difflib

            hints = [
                f"{k!r}" + (f" (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(k, self.fields, 1)) else "")
                for k in unknown
            ]
            raise ValidationError(f"{self.model.slug} has no parameter {', '.join(hints)}.")
        for key, value in values.items():
            self.fields[self._companions.get(key, key)].set(value)

    def changed_values(self) -> dict[str, Any]:
        """The values a run needs to state: required ones and those that differ from the model's default."""
        out: dict[str, Any] = {}
        for pid, value in self.values.items():
            field = self.fields[pid]
            default = field.model_default
            if field.param.required or default is None or str(value) != str(default):
                out[pid] = value
        return out

    # -- validation ------------------------------------------------------------------------------
    def validate(self) -> dict[str, str]:
        """Check the values with the protocol layer's rules; show each message next to its field.

        Returns {field id: message}; problems that belong to no field are under ''.
        """
        errors: dict[str, str] = {}
        try:
            prepare_run(self.model, self.values)
        except ValidationError as exc:
            errors = self._by_field(exc)
        created = False
        for pid, field in self.fields.items():
            created |= field.set_error(errors.get(pid, ""))
        if created:
            self._relayout()
        self._show_summary(errors)
        return errors

    def _by_field(self, exc: ValidationError) -> dict[str, str]:
        """{field id: its messages}; a URL companion's problem shows at its file field, others under ''."""
        errors: dict[str, str] = {}
        for problem in exc.problems:
            key = problem.field if problem.field in self.fields else self._companions.get(problem.field, "")
            errors[key] = f"{errors[key]} {problem.message}".strip() if key in errors else problem.message
        return errors

    def _show_summary(self, errors: dict[str, str]) -> None:
        if not errors:
            self.summary.value = ""
            return
        general = escape(errors.get("", ""))
        count = len([k for k in errors if k])
        text = f"{count} field{'s' if count != 1 else ''} need{'s' if count == 1 else ''} attention" if count else ""
        self.summary.value = (
            f'<span class="wiro-error" style="color:#b91c1c">⚠ {" ".join(x for x in (text, general) if x)}</span>'
        )

    def _on_change(self, _change: object = None) -> None:
        if self._live:
            self.validate()
        if self.code_button.value:
            self._render_code()

    # -- running ---------------------------------------------------------------------------------
    @property
    def client(self) -> Wiro:
        if self._client is None:
            from .._client import default_client

            self._client = default_client()
        return self._client

    def run(self) -> Task:
        """Validate, start the task, show its live status and outputs under the form; return the Task.

        Raises ValidationError (and shows the messages next to the fields) when a value is wrong.
        """
        errors = self.validate()
        if errors:
            self._live = True
            raise ValidationError(
                f"{self.model.slug}: " + " ".join(errors.values()),
                problems=[FieldProblem(field, message) for field, message in errors.items()],
                hint="Nothing was sent. The messages are shown next to the fields.",
            )
        return self._start()

    def _start(self) -> Task:
        from ._view import TaskView

        try:
            task = self.client.run(self.model.slug, self.values, wait=False)
        except ValidationError as exc:  # the server's own check: still nothing charged
            self._live = True
            errors = self._by_field(exc)
            for key, message in errors.items():
                if key in self.fields and self.fields[key].set_error(message):
                    self._relayout()
            self._show_summary(errors)
            raise
        self.task = task
        self.view = TaskView(task)
        self.result.children = (self.view,)
        self.summary.value = ""
        return task

    def _on_run_click(self, _button: object = None) -> None:
        if not self._busy.acquire(blocking=False):
            return
        errors = self.validate()
        if errors:
            self._live = True
            self._busy.release()
            return
        self.run_button.disabled = True
        self.summary.value = '<span style="color:#6b7280">Submitting…</span>'
        # Off the comm handler: an upload or a slow network must not stall the kernel.
        threading.Thread(target=self._submit, name="wiro-form-run", daemon=True).start()

    def _submit(self) -> None:
        try:
            self._start()
        except ValidationError:
            pass  # shown next to the fields
        except WiroError as exc:
            self.summary.value = f'<span class="wiro-error" style="color:#b91c1c">⚠ {escape(str(exc))}</span>'
        except Exception as exc:
            self.summary.value = f'<span class="wiro-error" style="color:#b91c1c">⚠ {escape(repr(exc))}</span>'
        finally:
            self.run_button.disabled = False
            self._busy.release()

    # -- from clicking to code -----------------------------------------------------------------
    def code(self) -> str:
        """The equivalent `%%wiro run` cell: `name=value` arguments, the main text in the body."""
        values = self.changed_values()
        main = self.model.main_text_parameter
        body = ""
        if main is not None and main.id in values and isinstance(values[main.id], str):
            body = values.pop(main.id)
        args = [f"{pid}={_shell_value(value)}" for pid, value in values.items()]
        line = " ".join(["%%wiro run", self.model.slug, *args])
        return f"{line}\n{body}" if body else line

    def python(self) -> str:
        """The equivalent Python call with `wiro_jupyter.Wiro().run(...)`."""
        values = self.changed_values()
        uploads = _upload_names(values)
        lines = ["import wiro_jupyter as wj", ""]
        if uploads:
            lines.append(f"# uploaded in the form: {', '.join(uploads)} — give the file paths")
        args = [repr(self.model.slug)]
        plain = all(
            pid.isidentifier() and not keyword.iskeyword(pid) and pid not in ("inputs", "wait", "timeout") for pid in values
        )
        if plain:
            args += [f"{pid}={_py_value(value)}" for pid, value in values.items()]
        elif values:
            inner = ", ".join(f"{pid!r}: {_py_value(value)}" for pid, value in values.items())
            args.append(f"inputs={{{inner}}}")
        lines.append("task = wj.Wiro().run(")
        lines += [f"    {arg}," for arg in args]
        lines.append(")")
        return "\n".join(lines)

    def _on_code_toggle(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._render_code()
        else:
            self.code_view.value = ""

    def _render_code(self) -> None:
        style = "background:var(--jp-layout-color2,#f3f4f6);padding:6px 8px;margin:4px 0;white-space:pre-wrap"
        self.code_view.value = (
            f'<pre class="wiro-code-cell" style="{style}">{escape(self.code())}</pre>'
            f'<pre class="wiro-code-python" style="{style}">{escape(self.python())}</pre>'
        )

    # -- static fallbacks --------------------------------------------------------------------
    def text(self) -> str:
        lines = [f"Form for {self.model.slug} ({len(self.fields)} fields); as a cell:", self.code()]
        return "\n".join(lines)

    def static_html(self) -> str:
        rows = "".join(
            f"<tr><td><code>{escape(pid)}</code></td><td>{escape(f.param.label)}"
            f"{' *' if f.param.required else ''}</td><td>{escape(_display_value(f.value))}</td></tr>"
            for pid, f in self.fields.items()
        )
        return (
            f'<div class="wiro-form-static">{self._header_html()}'
            f"<table><tr><th>id</th><th>field</th><th>value</th></tr>{rows}</table>"
            f"<pre>{escape(self.code())}</pre></div>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return merge_bundle(super()._repr_mimebundle_(**kwargs), html_bundle(self.static_html(), self.text()))

    def __repr__(self) -> str:
        return f"<RunForm {self.model.slug} ({len(self.fields)} fields)>"


def _flatten(items: list[w.Widget | Field]) -> tuple[w.Widget, ...]:
    return tuple(widget for item in items for widget in (item.widgets() if isinstance(item, Field) else [item]))


def _upload_names(values: dict[str, Any]) -> list[str]:
    names = []
    for value in values.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Upload):
                names.append(item.name)
    return names


def _scalar_text(value: Any) -> str:
    if isinstance(value, Upload):
        return value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _shell_value(value: Any) -> str:
    """A value as a `%%wiro run` argument: shell-quoted when needed; lists comma-joined."""
    text = ",".join(_scalar_text(v) for v in value) if isinstance(value, list) else _scalar_text(value)
    return shlex.quote(text)


def _py_value(value: Any) -> str:
    if isinstance(value, Upload):
        return repr(value.name)
    if isinstance(value, list):
        return "[" + ", ".join(_py_value(v) for v in value) + "]"
    return repr(value)


def _display_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_scalar_text(v) for v in value)
    return _scalar_text(value)


def form(slug: str, client: Wiro | None = None, **values: Any) -> RunForm:
    """An input form for the model `slug`, built from its parameters (Tool/Detail), with a Run button.

    >>> f = form("wiro/text-to-image", prompt="a lighthouse")   # doctest: +SKIP
    >>> f                       # fill it in, press Run: live status and outputs appear under it
    >>> f.values, f.code()      # the values, and the same run as a %%wiro cell
    """
    if client is None:
        from .._client import default_client

        client = default_client()
    model = client.model(slug)
    return RunForm(model, client, **values)

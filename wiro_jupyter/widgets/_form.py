"""`form("owner/slug")`: an input form built from a model's parameters, with a Run button.

text → one-line input, textarea → multi-line, select → dropdown with the model's options and labels,
range → slider (min/max/step) whose readout is an editable number box, number/float → number box (a
slider too when bounded with a step), checkbox → checkbox, fileinput → URL/path box plus a file picker
under it (the model's `…Url` companion folds into it), multifileinput / combinefileinput → several URLs
plus several files. Labels, required markers (*), defaults, descriptions (help under the field), groups
and the model's order are kept; `advanced` parameters fold into a collapsed "Advanced options" section
of their group.

Validation is the protocol layer's own (`prepare_run`): the form maps each message to the field
it names. Building is cheap: in a kernel every widget model opens a comm (one message with its whole
state), so a field is one widget where it can be (label and required marker in its own `description`,
no wrapper boxes; a file field is two: URL box and picker), Layout/Style models are shared, help texts
exist only where there is something to say and every widget is built with its final state (a trait
set afterwards is one more message).
"""

from __future__ import annotations

import io
import keyword
import re
import shlex
import threading
from typing import Any

import ipywidgets as w

from .._exceptions import FieldProblem, ValidationError, WiroError
from .._models import Model, Parameter, to_bool, to_number
from .._params import prepare_run, url_companion
from .._render import escape, html_bundle
from ._frontend import merge_bundle

LABEL_WIDTH = "180px"

class Upload(io.BytesIO):
    """A file picked in the form: its bytes with the file's name (what `prepare_run` uploads)."""

    def __init__(self, name: str, content: bytes) -> None:
        super().__init__(content)
        self.name = name

    def __repr__(self) -> str:
        return f"<Upload {self.name} ({len(self.getbuffer()):,} bytes)>"


class _Styles:
    """One Layout / Style model per kind, shared by every widget of a form (fewer comm models)."""

    def __init__(self) -> None:
        self._cache: dict[Any, Any] = {}

    def style(self, widget_class: type) -> Any:
        klass = widget_class.class_traits()["style"].klass  # type: ignore[attr-defined]
        key = ("style", klass)
        if key not in self._cache:
            kwargs = {"description_width": LABEL_WIDTH} if "description_width" in klass.class_traits() else {}
            self._cache[key] = klass(**kwargs)
        return self._cache[key]

    def layout(self, name: str) -> w.Layout:
        key = ("layout", name)
        if key not in self._cache:
            self._cache[key] = w.Layout(**_LAYOUTS[name])
        return self._cache[key]


_LAYOUTS: dict[str, dict[str, str]] = {
    "text": {"width": "min(100%, 640px)"},
    "area": {"width": "min(100%, 720px)", "height": "5.5em"},
    "slider": {"width": "min(100%, 560px)"},
    "number": {"width": "min(100%, 320px)"},
    "row": {"align_items": "center", "flex_flow": "row wrap"},
    # Under its URL box, where the input starts (no wrapper box: one comm fewer per file field).
    "upload": {"width": "auto", "min_width": "120px", "align_self": "flex-start", "margin": f"0 0 4px calc({LABEL_WIDTH} + 8px)"},
    "note": {"margin": f"-2px 0 4px calc({LABEL_WIDTH} + 8px)"},
    "group": {"margin": "4px 0 6px 0"},
    "auto": {},
}


def _label_html(param: Parameter) -> str:
    label = escape(param.label or param.id)
    star = ' <span class="wiro-required" style="color:#b91c1c" title="required">*</span>' if param.required else ""
    return f"{label}{star}"


class Field:
    """One parameter's input. `value` is what goes to the run (None: leave it to the server)."""

    def __init__(self, param: Parameter, styles: _Styles) -> None:
        self.param = param
        self.styles = styles
        self.note: w.HTML | None = None
        self.error = ""
        # Classes go in with the constructor: each later add_class() would be one more comm message.
        self.classes = ("wiro-field", f"wiro-field-{_css_id(param.id)}")
        self.row: w.Widget = self._build()
        if param.description:
            self._make_note()

    # subclasses ------------------------------------------------------------------------------
    def _build(self) -> w.Widget:
        raise NotImplementedError

    @property
    def value(self) -> Any:
        raise NotImplementedError

    def set(self, value: Any) -> None:
        raise NotImplementedError

    def value_widgets(self) -> list[w.Widget]:
        """The widgets whose `value` is the field's value (observed for live validation)."""
        raise NotImplementedError

    @property
    def model_default(self) -> Any:
        """The model's default in the field's terms (None when the model has none)."""
        default = self.param.default
        return None if default in (None, "", []) else default

    # shared ------------------------------------------------------------------------------------
    def _common(self, widget_class: type, **kwargs: Any) -> dict[str, Any]:
        return {
            "_dom_classes": self.classes,
            "description": _label_html(self.param),
            "description_allow_html": True,
            "tooltip": f"{self.param.id}: {self.param.describe()}",
            "style": self.styles.style(widget_class),
            **kwargs,
        }

    def _make_note(self) -> w.HTML:
        if self.note is None:
            # Built with its text: setting `value` afterwards would be one more comm message.
            self.note = w.HTML(
                self._note_html(),
                layout=self.styles.layout("note"),
                style=self.styles.style(w.HTML),
                _dom_classes=("wiro-note",),
            )
        return self.note

    def _render_note(self) -> None:
        if self.note is not None:
            self.note.value = self._note_html()

    def _note_html(self) -> str:
        parts = []
        if self.error:
            parts.append(f'<span class="wiro-error" style="color:#b91c1c">⚠ {escape(self.error)}</span>')
        if self.param.description:
            parts.append(
                f'<span class="wiro-help" style="color:var(--jp-ui-font-color2,#6b7280);font-size:12px">'
                f"{escape(self.param.description)}</span>"
            )
        return "<br>".join(parts)

    def set_error(self, message: str) -> bool:
        """Show `message` (or clear it with ''). True when a note widget had to be created."""
        if message == self.error:
            return False
        self.error = message
        created = self.note is None and bool(message)
        if message:
            self.row.add_class("wiro-invalid")
        else:
            self.row.remove_class("wiro-invalid")
        if created:
            self._make_note()
        else:
            self._render_note()
        return created

    def widgets(self) -> list[w.Widget]:
        return [self.row, *self.extra()] + ([self.note] if self.note is not None else [])

    def extra(self) -> list[w.Widget]:
        """Widgets of the field after its row (and before its note)."""
        return []


class TextField(Field):
    def _build(self) -> w.Widget:
        multiline = self.param.type == "textarea"
        cls = w.Textarea if multiline else w.Text
        default = self.param.default
        self.input = cls(
            value="" if default is None else str(default),
            placeholder=self.param.placeholder,
            layout=self.styles.layout("area" if multiline else "text"),
            **self._common(cls),
        )
        return self.input

    @property
    def value(self) -> Any:
        text = self.input.value
        return text if text.strip() else None

    def set(self, value: Any) -> None:
        self.input.value = "" if value is None else str(value)

    def value_widgets(self) -> list[w.Widget]:
        return [self.input]


class SelectField(Field):
    def _build(self) -> w.Widget:
        options = [(o.label or str(o.value), o.value) for o in self.param.options]
        value = _match_option(options, self.param.default)
        self.input = w.Dropdown(options=options, value=value, layout=self.styles.layout("number"), **self._common(w.Dropdown))
        return self.input

    @property
    def value(self) -> Any:
        return self.input.value

    def set(self, value: Any) -> None:
        self.input.value = _match_option(self.input.options, value)

    def value_widgets(self) -> list[w.Widget]:
        return [self.input]

    @property
    def model_default(self) -> Any:
        default = self.param.default
        return None if default is None else default


class NumberField(Field):
    def _build(self) -> w.Widget:
        p = self.param
        self.integer = p.is_integer or (p.type == "range" and p.step is None and _all_whole(p.min, p.max, p.default))
        bounded = p.min is not None and p.max is not None
        slider = bounded and (p.type == "range" or (p.type == "float" and p.step is not None))
        step = p.step if p.step else (1 if self.integer else _auto_step(p.min, p.max))
        value = self._coerce(to_number(p.default))
        if value is None:
            value = self._coerce(p.min) if p.min is not None else 0
        if bounded:
            value = min(max(value, self._coerce(p.min)), self._coerce(p.max))
        bounds = {"min": self._coerce(p.min), "max": self._coerce(p.max)} if bounded else {}
        if not slider:
            if self.integer:
                box_cls: type = w.BoundedIntText if bounded else w.IntText
            else:
                box_cls = w.BoundedFloatText if bounded else w.FloatText
            self.slider: w.IntSlider | w.FloatSlider | None = None
            self.input = box_cls(value=value, step=step, layout=self.styles.layout("number"), **bounds, **self._common(box_cls))
            return self.input
        # One widget: the slider's readout is its number box (ipywidgets 8: editable, typed values are clamped
        # to min/max and set `value` on Enter or blur), so no second widget, link or wrapper box.
        slider_cls = w.IntSlider if self.integer else w.FloatSlider
        fmt = {} if self.integer else {"readout_format": f".{_decimals(step)}f"}
        self.slider = slider_cls(
            value=value,
            step=step,
            readout=True,
            continuous_update=False,
            layout=self.styles.layout("slider"),
            **fmt,
            **bounds,
            **self._common(slider_cls),
        )
        self.input = self.slider
        return self.slider

    def _coerce(self, number: Any) -> Any:
        if number is None:
            return None
        return round(float(number)) if self.integer else float(number)

    @property
    def value(self) -> Any:
        return self.input.value

    def set(self, value: Any) -> None:
        number = to_number(value)
        if number is None:
            raise ValidationError(f"{self.param.id!r} must be a number ({self.param.describe()}); got {value!r}.")
        self.input.value = self._coerce(number)

    def value_widgets(self) -> list[w.Widget]:
        return [self.input]

    @property
    def model_default(self) -> Any:
        return self._coerce(to_number(self.param.default))


class CheckboxField(Field):
    def _build(self) -> w.Widget:
        self.input = w.Checkbox(
            value=to_bool(self.param.default), indent=True, layout=self.styles.layout("auto"), **self._common(w.Checkbox)
        )
        return self.input

    @property
    def value(self) -> Any:
        return bool(self.input.value)

    def set(self, value: Any) -> None:
        self.input.value = to_bool(value)

    def value_widgets(self) -> list[w.Widget]:
        return [self.input]

    @property
    def model_default(self) -> Any:
        return to_bool(self.param.default) if self.param.default not in (None, "") else None


class FileField(Field):
    """A file picker plus a box for URLs (or paths on the kernel's machine)."""

    companion: Parameter | None = None

    def _build(self) -> w.Widget:
        p = self.param
        self.multiple = p.type != "fileinput"
        limit = f" (up to {p.max_files})" if p.max_files else ""
        placeholder = ("https://… or a path, one per line" + limit) if self.multiple else "https://… or a path"
        cls = w.Textarea if self.multiple else w.Text
        # The URL box carries the field's label (its description): no separate label widget, and the picker
        # goes under it in the group's box (no wrapper box).
        self.urls = cls(
            placeholder=placeholder,
            layout=self.styles.layout("area" if self.multiple else "text"),
            **self._common(cls),
        )
        self.upload = w.FileUpload(
            multiple=self.multiple,
            description="Upload" + (" files" if self.multiple else ""),
            tooltip="…or upload " + ("files" if self.multiple else "a file") + " from this computer",
            style=self.styles.style(w.FileUpload),
            layout=self.styles.layout("upload"),
            _dom_classes=("wiro-upload", self.classes[1]),
        )
        return self.urls

    def extra(self) -> list[w.Widget]:
        return [self.upload]

    def uploads(self) -> list[Upload]:
        return [Upload(str(f.get("name") or self.param.id), bytes(f.get("content") or b"")) for f in self.upload.value]

    def url_list(self) -> list[str]:
        return [u.strip() for u in re.split(r"[\n,]+", self.urls.value) if u.strip()]

    @property
    def value(self) -> Any:
        items: list[Any] = [*self.uploads(), *self.url_list()]
        if not items:
            return None
        if not self.multiple:
            return items[0] if len(items) == 1 else items  # two: prepare_run says "takes one file"
        return items

    def set(self, value: Any) -> None:
        values = value if isinstance(value, (list, tuple)) else ([] if value is None else [value])
        texts = [str(v) for v in values if isinstance(v, str)]
        self.urls.value = "\n".join(texts) if self.multiple else (texts[0] if texts else "")

    def value_widgets(self) -> list[w.Widget]:
        return [self.upload, self.urls]


def _match_option(options: Any, value: Any) -> Any:
    """The option value matching `value` by value or by label (None when nothing matches)."""
    if value is None:
        return None
    for label, option in options:
        if str(option) == str(value) or label == str(value):
            return option
    return None


def _all_whole(*numbers: Any) -> bool:
    present = [float(n) for n in numbers if to_number(n) is not None]
    return all(n.is_integer() for n in present)


def _decimals(step: Any) -> int:
    """How many decimals a readout needs to show the multiples of `step` (at least 1, at most 6)."""
    text = f"{float(step):.6f}".rstrip("0")
    return min(max(len(text.split(".")[1]), 1), 6)


def _auto_step(low: Any, high: Any) -> float:
    span = float(high) - float(low)
    return float(f"{span / 100:.1g}") if span > 0 else 0.01


def _css_id(pid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", pid)


FIELD_TYPES: dict[str, type[Field]] = {
    "text": TextField,
    "textarea": TextField,
    "select": SelectField,
    "selectwithcover": SelectField,
    "range": NumberField,
    "number": NumberField,
    "float": NumberField,
    "checkbox": CheckboxField,
    "fileinput": FileField,
    "multifileinput": FileField,
    "combinefileinput": FileField,
}


def make_field(param: Parameter, styles: _Styles) -> Field:
    cls = FIELD_TYPES.get(param.type, TextField)
    if cls is SelectField and not param.options:
        cls = TextField
    return cls(param, styles)


class RunForm(w.VBox):
    """An input form for one model. See `form()`.

    `values` (dict) · `validate()` → {field id: message} · `run()` → Task · `task` (the last one) ·
    `code()` → the equivalent `%%wiro run` cell · `python()` → the equivalent Python call.
    """

    def __init__(self, model: Model, client: Any = None, **values: Any) -> None:
        self.model = model
        self._client = client
        self.task: Any = None
        self.view: Any = None  # the TaskView of the last run
        self._styles = _Styles()
        self._live = False  # re-validate on every change once a run was refused
        self._busy = threading.Lock()
        self.fields: dict[str, Field] = {}
        self._companions: dict[str, str] = {}  # companion id -> file field id
        self._boxes: list[tuple[w.Box, list[Any]]] = []  # a box and its items: widgets and fields
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
            children: list[Any] = []  # widgets and fields, in order
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
            classes = ("wiro-group", f"wiro-group-{_css_id(title or 'inputs')}")
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

    def _on_change(self, _change: Any = None) -> None:
        if self._live:
            self.validate()
        if self.code_button.value:
            self._render_code()

    # -- running ---------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            from .._client import default_client

            self._client = default_client()
        return self._client

    def run(self) -> Any:
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

    def _start(self) -> Any:
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

    def _on_run_click(self, _button: Any = None) -> None:
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

    def _on_code_toggle(self, change: Any) -> None:
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


def _flatten(items: list[Any]) -> tuple[w.Widget, ...]:
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


def form(slug: str, client: Any = None, **values: Any) -> RunForm:
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

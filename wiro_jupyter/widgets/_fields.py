"""The inputs of a form, one `Field` per model parameter (see `_form.RunForm`), and `Upload`, a picked file.

text → one-line input, textarea → multi-line, select → dropdown with the model's options and labels,
range → slider (min/max/step) whose readout is an editable number box, number/float → number box (a
slider too when bounded with a step), checkbox → checkbox, fileinput → URL/path box plus a file picker
under it (the model's `…Url` companion folds into it), multifileinput / combinefileinput → several URLs
plus several files. Labels, required markers (*), defaults and descriptions (help under the field) are
kept.

Building is cheap: in a kernel every widget model opens a comm (one message with its whole state), so
a field is one widget where it can be (label and required marker in its own `description`, no wrapper
boxes; a file field is two: URL box and picker), Layout/Style models are shared (`Styles`), help texts
exist only where there is something to say and every widget is built with its final state (a trait set
afterwards is one more message).
"""

from __future__ import annotations

import io
import re
from typing import Any

import ipywidgets as w

from .._exceptions import ValidationError
from .._fields import to_bool, to_number
from .._models import Parameter
from .._render import escape

__all__ = [
    "FIELD_TYPES",
    "CheckboxField",
    "Field",
    "FileField",
    "NumberField",
    "SelectField",
    "Styles",
    "TextField",
    "Upload",
    "css_id",
    "make_field",
]

LABEL_WIDTH = "180px"


class Upload(io.BytesIO):
    """A file picked in the form: its bytes with the file's name (what `prepare_run` uploads)."""

    def __init__(self, name: str, content: bytes) -> None:
        super().__init__(content)
        self.name = name

    def __repr__(self) -> str:
        return f"<Upload {self.name} ({len(self.getbuffer()):,} bytes)>"


class Styles:
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

    def __init__(self, param: Parameter, styles: Styles) -> None:
        self.param = param
        self.styles = styles
        self.note: w.HTML | None = None
        self.error = ""
        # Classes go in with the constructor: each later add_class() would be one more comm message.
        self.classes = ("wiro-field", f"wiro-field-{css_id(param.id)}")
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


def css_id(pid: str) -> str:
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


def make_field(param: Parameter, styles: Styles) -> Field:
    cls = FIELD_TYPES.get(param.type, TextField)
    if cls is SelectField and not param.options:
        cls = TextField
    return cls(param, styles)

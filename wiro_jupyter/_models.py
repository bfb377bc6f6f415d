"""What the Wiro API returns, as typed objects read from the server's raw JSON.

The server's field names differ from what its docs and SDKs say
(docs/protocol.md, Wiro §4.1): parameter items carry `defaultvalue`, string `minvalue` /
`maxvalue`, `incrementby`, options as `{text, value}` and `maxinputlenght`
(sic). Both spellings are accepted everywhere here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import _render
from ._exceptions import ValidationError
from ._fields import list_field, maybe_json, to_bool, to_number, to_text

FILE_TYPES = ("fileinput", "multifileinput", "combinefileinput")
NUMBER_TYPES = ("range", "number", "float")
SELECT_TYPES = ("select", "selectwithcover")


def _first(raw: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if key in raw and raw[key] is not None:
            return raw[key]
    return default


@dataclass(frozen=True)
class Option:
    value: Any
    label: str


@dataclass
class Parameter:
    """One input of a model, flattened out of the server's groups."""

    id: str
    type: str
    label: str = ""
    default: Any = None
    options: list[Option] = field(default_factory=list)
    min: float | int | None = None
    max: float | int | None = None
    step: float | int | None = None
    required: bool = False
    description: str = ""
    placeholder: str = ""
    group: str = ""
    max_files: int | None = None
    advanced: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any], group: str = "") -> Parameter:
        options = []
        for opt in list_field(raw, "options", f"Tool/Detail (parameter {to_text(raw.get('id'))!r})"):
            if isinstance(opt, dict):
                value = opt.get("value", opt.get("text"))
                options.append(Option(value=value, label=str(_first(opt, "text", "label", default=value))))
            else:
                options.append(Option(value=opt, label=str(opt)))
        max_files = to_number(_first(raw, "maxinputlenght", "maxinputlength", "maxInputLength"))
        return cls(
            id=str(raw.get("id", "")),
            type=str(raw.get("type") or "text").lower(),
            label=str(_first(raw, "label", "text", default="") or raw.get("id", "")),
            default=_first(raw, "defaultvalue", "default", "value"),
            options=options,
            min=to_number(_first(raw, "minvalue", "min")),
            max=to_number(_first(raw, "maxvalue", "max")),
            step=to_number(_first(raw, "incrementby", "step")),
            required=to_bool(raw.get("required", False)),
            description=str(_first(raw, "note", "description", default="") or ""),
            placeholder=str(raw.get("placeholder") or ""),
            group=group,
            max_files=int(max_files) if max_files else None,
            advanced=to_bool(raw.get("advanced", False)),
            raw=raw,
        )

    @property
    def is_file(self) -> bool:
        return self.type in FILE_TYPES

    @property
    def is_number(self) -> bool:
        return self.type in NUMBER_TYPES

    @property
    def is_select(self) -> bool:
        return self.type in SELECT_TYPES

    @property
    def is_integer(self) -> bool:
        """Whole numbers only when every bound the model declares is whole."""
        if self.type == "float":
            return False
        if self.type == "number":
            return True
        bounds = [b for b in (self.min, self.max, self.step, to_number(self.default)) if b is not None]
        return all(float(b).is_integer() for b in bounds) and self.step is not None

    def describe(self) -> str:
        parts = [self.type]
        if self.is_number and (self.min is not None or self.max is not None):
            parts.append(f"{self.min}..{self.max}" + (f" step {self.step}" if self.step else ""))
        if self.options:
            parts.append("one of " + ", ".join(repr(o.value) for o in self.options))
        if self.max_files:
            parts.append(f"up to {self.max_files} files/URLs")
        if self.required:
            parts.append("required")
        elif self.default not in (None, ""):
            parts.append(f"default {self.default!r}")
        return ", ".join(parts)


def parameters_from_groups(raw: dict[str, Any]) -> list[Parameter]:
    """The server sends groups `[{title, items: [...]}]`; older docs show a flat list. Accept both."""
    params: list[Parameter] = []
    for entry in list_field(raw, "parameters", "Tool/Detail"):
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("items"), list):
            title = str(entry.get("title") or "")
            params.extend(Parameter.from_raw(item, title) for item in entry["items"] if isinstance(item, dict))
        elif "id" in entry:
            params.append(Parameter.from_raw(entry))
    return params


@dataclass
class Model:
    """A model of the catalogue (Tool/List item) or its full definition (Tool/Detail)."""

    slug: str
    title: str = ""
    description: str = ""
    categories: list[str] = field(default_factory=list)
    price: float | None = None
    price_method: str = ""
    image: str = ""
    parameters: list[Parameter] = field(default_factory=list)
    id: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Model:
        owner = _first(raw, "cleanslugowner", "slugowner", default="")
        project = _first(raw, "cleanslugproject", "slugproject", default="")
        price, method = None, ""
        pricing = maybe_json(raw.get("dynamicprice"))
        if isinstance(pricing, list) and pricing and isinstance(pricing[0], dict):
            price = to_number(pricing[0].get("price"))
            method = str(pricing[0].get("priceMethod") or "")
        if price is None:
            price = to_number(raw.get("approximatelycost"))
        categories = maybe_json(raw.get("categories")) or []
        return cls(
            slug=f"{owner}/{project}",
            title=str(raw.get("title") or ""),
            description=str(_first(raw, "description", "seodescription", default="") or ""),
            categories=[str(c) for c in categories] if isinstance(categories, list) else [],
            price=float(price) if price is not None else None,
            price_method=method,
            image=str(raw.get("image") or ""),
            parameters=parameters_from_groups(raw),
            id=str(raw.get("id") or ""),
            raw=raw,
        )

    @property
    def owner(self) -> str:
        return self.slug.split("/", 1)[0]

    @property
    def project(self) -> str:
        return self.slug.split("/", 1)[1]

    def parameter(self, id: str) -> Parameter:
        for p in self.parameters:
            if p.id == id:
                return p
        raise KeyError(id)

    @property
    def main_text_parameter(self) -> Parameter | None:
        """Where a plain-text cell body goes: `prompt`, else the first textarea, else the first text."""
        by_id = {p.id: p for p in self.parameters}
        if "prompt" in by_id:
            return by_id["prompt"]
        for kind in ("textarea", "text"):
            for p in self.parameters:
                if p.type == kind and not p.id.lower().endswith("url") and p.id not in ("session_id", "user_id"):
                    return p
        return None

    def __repr__(self) -> str:
        price = f"${self.price:g}/{self.price_method or 'run'}" if self.price is not None else ""
        # Catalogue items carry no parameter definitions; only Tool/Detail does.
        count = f"{len(self.parameters)} parameters" if self.raw.get("parameters") is not None else ""
        details = ", ".join(x for x in (count, price) if x)
        return f"<Model {self.slug} {self.title!r}" + (f" ({details})>" if details else ">")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return _render.model_bundle(self)


class ModelList(list[Model]):
    """A page of the catalogue; shows as a table in a notebook."""

    total: int = 0

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(_render.model_list_text(self, self.total))  # IPython would otherwise print it as a plain list

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return _render.model_list_bundle(self, self.total)


def split_slug(slug: str) -> tuple[str, str]:
    parts = [p for p in str(slug).strip().strip("/").split("/") if p]
    if len(parts) != 2:
        raise ValidationError(
            f"{slug!r} is not a model slug.",
            hint="Write it as 'owner/model', e.g. 'wiro/text-to-image'; Wiro().models() lists them.",
        )
    return parts[0], parts[1]

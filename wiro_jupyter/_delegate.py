"""`Delegated`: an attribute that is another object's attribute, for the thin wrappers of this package.

A `Task` reads its state's fields, a `VoiceSession` its async core's: written as one property each,
those were dozens of three-line copies. `Delegated` says it once, typed (`Delegated[str]` reads as a
`str`), with the docstring `help()` shows.
"""

from __future__ import annotations

from typing import Generic, TypeVar, overload

T = TypeVar("T")

__all__ = ["Delegated"]


class Delegated(Generic[T]):
    """`obj.<name>` is `obj.<holder>.<field>` (`field` defaults to the attribute's own name); read-only
    unless `settable=True`, where assigning sets the held object's attribute (its own setter runs)."""

    def __init__(self, holder: str, field: str = "", *, settable: bool = False, doc: str = "") -> None:
        self.holder = holder
        self.field = field
        self.settable = settable
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.field = self.field or name
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Delegated[T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> T | Delegated[T]:
        if obj is None:
            return self
        value: T = getattr(getattr(obj, self.holder), self.field)
        return value

    def __set__(self, obj: object, value: T) -> None:
        if not self.settable:
            raise AttributeError(f"{self.name} is read-only")
        setattr(getattr(obj, self.holder), self.field, value)

    def __repr__(self) -> str:
        return f"<Delegated {self.name} = self.{self.holder}.{self.field}>"


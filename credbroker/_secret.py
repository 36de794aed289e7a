"""``Secret``: one version of one KV v2 secret, as an opaque, immutable value."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from credbroker._redact import fingerprint

__all__ = ["Secret"]


class Secret:
    """All the fields of one KV v2 version, read in one request so they can never be torn across versions.

    It never shows a value: its repr lists field names, and ``fingerprint(field)`` is the only way to display
    one. ``reveal(field)`` returns a value for the code that must use it. Immutable, so it is handed out
    without copying and is safe to share between threads.
    """

    __slots__ = ("_fields", "created_time", "path", "problems", "version")

    path: str
    version: int
    created_time: str
    _fields: Mapping[str, str]
    #: Fields Vault returned that cannot be credentials (not strings), with what is wrong; checked by factories.
    problems: Mapping[str, str]

    def __init__(
        self,
        path: str,
        version: int,
        fields: Mapping[str, str],
        created_time: str = "",
        *,
        problems: Mapping[str, str] | None = None,
    ) -> None:
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "created_time", created_time)
        object.__setattr__(self, "_fields", MappingProxyType(dict(fields)))
        object.__setattr__(self, "problems", MappingProxyType(dict(problems or {})))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret({self.path!r}, version={self.version}, fields=[{', '.join(self._fields)}])"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self.path, self.version, dict(self._fields)) == (other.path, other.version, dict(other._fields))

    def __hash__(self) -> int:
        return hash((self.path, self.version))

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(self._fields)

    def reveal(self, name: str) -> str:
        """Return the value of one field. Raises KeyError naming the field (never a value)."""
        return self._fields[name]

    def get(self, name: str) -> str | None:
        return self._fields.get(name)

    def reveal_all(self) -> dict[str, str]:
        """Return every field's value, for a client factory."""
        return dict(self._fields)

    def fingerprint(self, name: str) -> str:
        """The short, non-reversible tag by which a field's value may be shown."""
        return fingerprint(self._fields[name])

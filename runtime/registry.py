"""One registry style for everything edgecls lets others plug in: inference backends, export formats,
quantization ladders, stream sinks and batch engines.

A :class:`Registry` maps names (and aliases) to entries, in registration order. Registration is explicit;
registering a taken name is an error unless ``replace=True`` says it is meant, so a plug-in can never
hide a built-in by accident, nor a built-in a plug-in. Looking up an unknown name raises the registry's
error class with the names that exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Generic, TypeVar

from edgecls.runtime.errors import EdgeclsError, OptionError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Named entries of one kind, read as a mapping from name (or alias) to entry.

    Iterating gives the entries' own names in registration order (aliases resolve in lookups but are not
    listed); ``len`` counts entries.
    """

    def __init__(self, kind: str, *, error: type[EdgeclsError] = OptionError) -> None:
        """``kind`` names an entry in messages ("backend", "format"); ``error`` is raised by :meth:`lookup`."""
        self.kind = kind
        self.error = error
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, entry: T, *, aliases: Iterable[str] = (), replace: bool = False) -> T:
        """Add ``entry`` under ``name`` and ``aliases``; returns ``entry`` (so it can decorate).

        With ``replace=True`` an entry already called ``name`` is replaced (its aliases go with it) and the
        new one takes its place in the order.

        Raises:
            OptionError: ``name`` or an alias is taken (and ``replace`` is false, or the alias belongs to
                another entry), or a name is empty.
        """
        aliases = tuple(aliases)
        for key in (name, *aliases):
            if not isinstance(key, str) or not key:
                raise OptionError(f"a {self.kind} needs a non-empty name, got {key!r}")
        if name in self._aliases:
            raise OptionError(f"{name!r} is an alias of the {self.kind} {self._aliases[name]!r}; choose another name")
        if name in self._entries and not replace:
            raise OptionError(f"a {self.kind} named {name!r} is registered already; "
                              f"pass replace=True to replace it")
        for alias in aliases:
            owner = self._aliases.get(alias, alias if alias in self._entries else None)
            if owner is not None and owner != name:
                raise OptionError(f"{alias!r} already names the {self.kind} {owner!r}")
        self._aliases = {key: owner for key, owner in self._aliases.items() if owner != name}
        self._entries[name] = entry
        self._aliases.update(dict.fromkeys(aliases, name))
        return entry

    def unregister(self, name: str) -> T:
        """Remove the entry called ``name`` (and its aliases); returns it.

        Raises:
            OptionError: nothing is registered as ``name``.
        """
        if name not in self._entries:
            raise OptionError(f"no {self.kind} named {name!r} is registered")
        self._aliases = {key: owner for key, owner in self._aliases.items() if owner != name}
        return self._entries.pop(name)

    def lookup(self, name: str) -> T:
        """The entry called ``name`` (or aliased so).

        Raises:
            EdgeclsError: the registry's ``error`` class, naming the registered choices.
        """
        try:
            return self[name]
        except KeyError:
            raise self.error(f"unknown {self.kind} {name!r}; choose one of: {self.choices()}") from None

    def choices(self) -> str:
        """The registered names for a message, comma-separated."""
        return ", ".join(self._entries)

    def entries(self) -> tuple[T, ...]:
        """Every entry, in registration order."""
        return tuple(self._entries.values())

    def __getitem__(self, name: str) -> T:
        return self._entries[self._aliases.get(name, name)]

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {self.choices()})"

"""Immutable JSON containers for append-only history.

Approval records and conversation entries are shared between the live agent
and every state captured from it, so capturing is a pointer copy rather than a
deep copy. Sharing is only safe because nobody can change them in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn


class FrozenDict(dict):  # type: ignore[type-arg]
    """A ``dict`` that refuses in-place changes.

    It stays a real ``dict`` so ``json.dumps``, ``orjson``, ``==`` with plain
    dicts and ``isinstance(x, dict)`` keep working. ``dict(x)``, ``x.copy()``,
    ``copy.copy(x)`` and ``copy.deepcopy(x)`` give plain, mutable copies (the deep
    one all the way down): a copy is the caller's to change. ``pickle`` works for
    sending states between processes; the project never stores or loads it.
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(
            "history records are immutable (they are part of the audit trail); "
            "use dict(record) for a mutable copy"
        )

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda item: item[0])))

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        return thaw(self)  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[Any, Any]]]:
        # In-memory transport only (e.g. to a worker process): we never store or load pickle.
        return (FrozenDict, (dict(self),))


class FrozenList(list):  # type: ignore[type-arg]
    """A ``list`` that refuses in-place changes (see FrozenDict for why it stays a list)."""

    __slots__ = ()
    _refuse = FrozenDict._refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return thaw(self)  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[type[FrozenList], tuple[list[Any]]]:
        return (FrozenList, (list(self),))


def freeze(value: Any) -> Any:
    """Turn a JSON value into its immutable form (FrozenDict / FrozenList)."""
    if isinstance(value, dict):
        if isinstance(value, FrozenDict):
            return value
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        if isinstance(value, FrozenList):
            return value
        return FrozenList([freeze(item) for item in value])
    return value


def thaw(value: Any) -> Any:
    """Turn a frozen JSON value (or a history view) back into plain, mutable dicts and lists."""
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)) or (isinstance(value, Sequence) and not isinstance(value, (str, bytes))):
        return [thaw(item) for item in value]
    return value


class AppendOnlyView(Sequence):  # type: ignore[type-arg]
    """The first ``length`` items of a list that only ever grows: an O(1) snapshot of it.

    A save needs only the entries past its parent's count, so the state it saves can
    look at the live history through this view instead of copying it.
    """

    __slots__ = ("_items", "_length")

    def __init__(self, items: list[Any], length: int | None = None) -> None:
        self._items = items
        self._length = len(items) if length is None else length

    def __len__(self) -> int:
        return self._length

    def since(self, start: int) -> list[Any]:
        """The items from ``start`` (>= 0) on, as a list: what a save reads of the view."""
        return self._items[start:self._length]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):  # O(len(slice)): the range maps the slice onto the first _length items
            span = range(self._length)[index]
            if span.step == 1:
                return self._items[span.start:span.stop]
            return [self._items[i] for i in span]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError("history index out of range")
        return self._items[index]

"""Reusable Qt item models."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)

AnyIndex = QModelIndex | QPersistentModelIndex
RowT = TypeVar("RowT")


class RowTableModel(QAbstractTableModel, Generic[RowT]):
    """A read-only table over a list of rows: subclasses name their ``COLUMNS`` and
    implement ``data``; they fill it with ``_reset(rows)``."""

    COLUMNS: tuple[str, ...] = ()

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._rows: list[RowT] = []

    def _reset(self, rows: Iterable[RowT]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row_at(self, row: int) -> RowT:
        return self._rows[row]

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(self.COLUMNS)
        ):
            return self.COLUMNS[section]
        return None

    def _valid(self, index: AnyIndex) -> bool:
        return index.isValid() and 0 <= index.row() < len(self._rows)


class CheckListModel(QAbstractListModel):
    """A list of (code, label) entries the user ticks; ``checked_codes`` is the choice."""

    checked_changed = Signal()

    def __init__(self, entries: Sequence[tuple[str, str]], parent: object = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._entries = list(entries)
        self._checked: set[str] = set()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._entries)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._entries):
            return None
        code, label = self._entries[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return label
        if role == Qt.ItemDataRole.CheckStateRole:
            return (
                Qt.CheckState.Checked.value
                if code in self._checked
                else Qt.CheckState.Unchecked.value
            )
        if role == Qt.ItemDataRole.UserRole:
            return code
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemIsUserCheckable
        )

    def setData(self, index: AnyIndex, value: object, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.CheckStateRole:
            return False
        code = self._entries[index.row()][0]
        checked = value in (Qt.CheckState.Checked, Qt.CheckState.Checked.value, 2)
        if checked:
            self._checked.add(code)
        else:
            self._checked.discard(code)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
        self.checked_changed.emit()
        return True

    def checked_codes(self) -> frozenset[str]:
        return frozenset(self._checked)

    def set_checked_codes(self, codes: Iterable[str]) -> None:
        known = {code for code, _ in self._entries}
        self._checked = set(codes) & known
        if self._entries:
            self.dataChanged.emit(
                self.index(0), self.index(len(self._entries) - 1), [Qt.ItemDataRole.CheckStateRole]
            )
        self.checked_changed.emit()

    def set_checked(self, code: str, checked: bool) -> None:
        for row, (entry_code, _) in enumerate(self._entries):
            if entry_code == code:
                state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
                self.setData(self.index(row), state.value, Qt.ItemDataRole.CheckStateRole)
                return
        raise KeyError(code)


class TextFilterProxy(QSortFilterProxyModel):
    """Keeps rows whose searchable text (``UserRole + 1`` on column 0) holds every word."""

    SEARCH_ROLE = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._words: tuple[str, ...] = ()
        self.setSortRole(Qt.ItemDataRole.UserRole)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def set_search_text(self, text: str) -> None:
        words = tuple(text.casefold().split())
        if words == self._words:
            return
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9; invalidateFilter is deprecated
            self.beginFilterChange()
            self._words = words
            self.endFilterChange()
        else:
            self._words = words
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        if not self._words:
            return True
        model = self.sourceModel()
        haystack = model.data(model.index(source_row, 0, source_parent), self.SEARCH_ROLE)
        if not isinstance(haystack, str):
            return False
        return all(word in haystack for word in self._words)

"""Reusable Qt item models."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
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

    # What a TextFilterProxy over this model reads, without a QModelIndex per call.

    def cell(self, row: int, column: int, role: int) -> object:
        """``data`` of a row and column; models searched through a proxy override this and
        let ``data`` call it, sparing each painted cell an index made through Qt."""
        return self.data(self.index(row, column), role)

    def search_text(self, row: int) -> str:
        """Row ``row``'s searchable text, casefolded ("" when the table is not searched)."""
        return ""

    def sort_key(self, row: int, column: int) -> Any:
        """What orders row ``row`` by ``column``: comparable with the column's other keys."""
        value = self.data(self.index(row, column), Qt.ItemDataRole.DisplayRole)
        return value.casefold() if isinstance(value, str) else ("" if value is None else str(value))


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


class TextFilterProxy(QAbstractTableModel):
    """The rows of a ``RowTableModel`` whose search text holds every word typed, sorted by
    a column: the view's model, in place of a ``QSortFilterProxyModel`` over thousands of rows.

    Each row's search text (``RowTableModel.search_text``) and, for the column sorted, its
    sort key (``RowTableModel.sort_key``) are read once per change of the source, so a
    keystroke is a list comprehension over strings and one layout change of the view, not a
    call into the model for every row and every comparison. Rows come back in the order of the
    column sorted (ties in the source's order); a selection stays on its row while the row
    stays in the list. The source changes only by a reset (``RowTableModel._reset``); any
    other change is taken as one.
    """

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._source: RowTableModel[Any] | None = None
        self._columns = 0
        self._words: tuple[str, ...] = ()
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._order: list[int] = []  # every source row, in the order sorted
        self._rows: list[int] = []  # the rows shown: row here -> row in the source
        self._position: dict[int, int] | None = None  # row in the source -> row here
        self._search: list[str] | None = None  # per source row, read when first needed

    # --- the source ---------------------------------------------------------------------

    def sourceModel(self) -> RowTableModel[Any] | None:
        return self._source

    def setSourceModel(self, model: RowTableModel[Any]) -> None:
        self.beginResetModel()
        if self._source is not None:
            for signal, slot in self._source_signals(self._source):
                signal.disconnect(slot)
        self._source = model
        for signal, slot in self._source_signals(model):
            signal.connect(slot)
        self._rebuild()
        self.endResetModel()

    def _source_signals(self, model: RowTableModel[Any]) -> list[tuple[Any, Any]]:
        return [
            (model.modelAboutToBeReset, self.beginResetModel),
            (model.modelReset, self._source_reset),
            # Not made by a RowTableModel; handled as the reset they amount to.
            (model.layoutAboutToBeChanged, self.beginResetModel),
            (model.layoutChanged, self._source_reset),
            (model.rowsAboutToBeInserted, self.beginResetModel),
            (model.rowsInserted, self._source_reset),
            (model.rowsAboutToBeRemoved, self.beginResetModel),
            (model.rowsRemoved, self._source_reset),
            (model.rowsAboutToBeMoved, self.beginResetModel),
            (model.rowsMoved, self._source_reset),
            (model.dataChanged, self._source_data_changed),
            (model.headerDataChanged, self.headerDataChanged),
        ]

    def _source_reset(self) -> None:
        self._rebuild()
        self.endResetModel()

    def _source_data_changed(self) -> None:
        self.beginResetModel()
        self._rebuild()
        self.endResetModel()

    def _rebuild(self) -> None:
        self._columns = self._source.columnCount() if self._source is not None else 0
        self._search = None
        self._order = self._sorted_rows()
        self._rows = self._matching(self._order)
        self._position = None

    def mapToSource(self, index: AnyIndex) -> QModelIndex:
        if self._source is None or not self._valid(index):
            return QModelIndex()
        return self._source.index(self._rows[index.row()], index.column())

    def mapFromSource(self, source_index: AnyIndex) -> QModelIndex:
        if self._position is None:
            self._position = {source_row: row for row, source_row in enumerate(self._rows)}
        row = self._position.get(source_index.row()) if source_index.isValid() else None
        return QModelIndex() if row is None else self.index(row, source_index.column())

    # --- searching and sorting -----------------------------------------------------------

    def set_search_text(self, text: str) -> None:
        words = tuple(text.casefold().split())
        if words == self._words:
            return
        # Each word kept or lengthened: only the rows shown now can still match.
        narrower = all(any(old in new for new in words) for old in self._words)
        candidates = self._rows if narrower else self._order
        self._relayout(lambda: self._filter(words, candidates))

    def _filter(self, words: tuple[str, ...], candidates: list[int]) -> None:
        self._words = words
        self._rows = self._matching(candidates)

    def _matching(self, rows: list[int]) -> list[int]:
        words = self._words
        if not words:
            return list(rows)
        search = self._search_texts()
        if len(words) == 1:
            word = words[0]
            return [row for row in rows if word in search[row]]
        return [row for row in rows if all(word in search[row] for word in words)]

    def _search_texts(self) -> list[str]:
        if self._search is None:
            source = self._source
            self._search = (
                [source.search_text(row) for row in range(source.rowCount())]
                if source is not None
                else []
            )
        return self._search

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        def resort() -> None:
            self._sort_column, self._sort_order = column, order
            self._order = self._sorted_rows()
            self._rows = self._matching(self._order)

        self._relayout(resort)

    def _sorted_rows(self) -> list[int]:
        source = self._source
        count = source.rowCount() if source is not None else 0
        if source is None or not 0 <= self._sort_column < source.columnCount():
            return list(range(count))
        column = self._sort_column
        keys = [source.sort_key(row, column) for row in range(count)]
        # Stable both ways: equal keys keep the source's order, as QSortFilterProxyModel does.
        return sorted(
            range(count),
            key=keys.__getitem__,
            reverse=self._sort_order == Qt.SortOrder.DescendingOrder,
        )

    def _relayout(self, change: Callable[[], None]) -> None:
        """Apply ``change`` to the rows shown as one layout change; what the view holds on to
        (selection, current row) follows its row, or is dropped with it."""
        self.layoutAboutToBeChanged.emit()
        held = self.persistentIndexList()
        held_rows = [
            (self._rows[index.row()], index.column()) if self._valid(index) else None
            for index in held
        ]
        change()
        self._position = None
        if held:
            position = {source_row: row for row, source_row in enumerate(self._rows)}
            self._position = position
            moved = []
            for where in held_rows:
                row = position.get(where[0]) if where is not None else None
                moved.append(
                    QModelIndex() if row is None or where is None else self.index(row, where[1])
                )
            self.changePersistentIndexList(held, moved)
        self.layoutChanged.emit()

    # --- the table ------------------------------------------------------------------------

    def _valid(self, index: AnyIndex) -> bool:
        return index.isValid() and 0 <= index.row() < len(self._rows)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._columns

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        source = self._source
        if source is None or not self._valid(index):
            return None
        return source.cell(self._rows[index.row()], index.column(), role)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation == Qt.Orientation.Horizontal and self._source is not None:
            return self._source.headerData(section, orientation, role)
        return super().headerData(section, orientation, role)

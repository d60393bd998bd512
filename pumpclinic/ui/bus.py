"""One change notice after a service changes data; each view decides whether to refresh."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class DataBus(QObject):
    # A frozenset of entity names: "patient", "user", "settings", ...
    changed = Signal(object)

    def notify(self, *entities: str) -> None:
        self.changed.emit(frozenset(entities))

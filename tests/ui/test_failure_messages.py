"""A locked, full or read-only database: a clear message, the entry kept on screen, nothing
half-saved."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from PySide6.QtCore import QDate
from PySide6.QtWidgets import QMessageBox
from sqlalchemy import event

from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.patients import PatientDialog, PatientsPage

pytestmark = pytest.mark.sqlite_only


def patient_count(db_path) -> int:
    with sqlite3.connect(db_path) as connection:
        return connection.execute("SELECT count(*) FROM patients").fetchone()[0]


def on_every_connection(services, pragma: str) -> None:
    engine = services.context.session_factory.kw["bind"]
    engine.dispose()

    def apply(dbapi_connection, _record) -> None:
        dbapi_connection.execute(pragma)

    event.listen(engine, "connect", apply)


def fill(qtbot, dialog: PatientDialog) -> None:
    qtbot.keyClicks(dialog.mrn, "RIV-555")
    qtbot.keyClicks(dialog.family_name, "Lindqvist")
    qtbot.keyClicks(dialog.given_name, "Maja")
    dialog.date_of_birth.setDate(QDate(1988, 2, 14))
    dialog.origin.setCurrentIndex(dialog.origin.findData("spinal"))
    qtbot.keyClicks(dialog.diagnosis, "Traumatic spinal cord injury T4")
    # Long enough to need new database pages, so that a full disk is hit.
    dialog.notes.setPlainText("Seen by the spasticity team. " * 150)


def hold_write_lock(db_path) -> sqlite3.Connection:
    other = sqlite3.connect(db_path, timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    return other


@pytest.mark.parametrize(
    ("break_it", "words"),
    [
        (lambda s, db: on_every_connection(s, "PRAGMA query_only = 1"), "read-only"),
        (lambda s, db: on_every_connection(s, "PRAGMA max_page_count = 1"), "disk is full"),
        (lambda s, db: hold_write_lock(db), "locked by another program"),
    ],
    ids=["read-only", "disk-full", "locked"],
)
def test_save_fails_clearly_and_keeps_the_entry(
    qtbot, services, nurse, db_path, break_it: Callable[..., object], words: str
) -> None:
    page = PatientsPage(services, nurse, DataBus())
    qtbot.addWidget(page)
    dialog = page.new_patient()
    fill(qtbot, dialog)
    keep_alive = break_it(services, db_path)
    dialog.save()
    boxes = [b for b in dialog.findChildren(QMessageBox) if b.objectName() == "knownErrorBox"]
    assert boxes, "a clear message must be shown"
    assert words in boxes[-1].text()
    assert "Nothing was changed" in boxes[-1].text()
    assert dialog.isVisible()
    assert dialog.mrn.text() == "RIV-555" and dialog.family_name.text() == "Lindqvist"
    if isinstance(keep_alive, sqlite3.Connection):
        keep_alive.rollback()
        keep_alive.close()
    assert patient_count(db_path) == 0

"""Render the README's screenshots from a fresh demo clinic (offscreen Qt).

QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication, QWidget

from pumpclinic.reference_files import load_reference
from pumpclinic.services.clinic import open_clinic
from pumpclinic.services.demo import DEMO_USERS, create_demo_clinic
from pumpclinic.ui.app import make_application
from pumpclinic.ui.login import LoginDialog, demo_note
from pumpclinic.ui.main_window import MainWindow

NOW = dt.datetime(2026, 11, 26, 10, 30, tzinfo=dt.UTC)


def save(widget: QWidget, path: Path) -> None:
    QApplication.processEvents()
    widget.grab().save(str(path))
    print(path)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("resources/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = make_application()
    db = Path(tempfile.mkdtemp()) / "demo.sqlite3"
    services = open_clinic(
        f"sqlite+pysqlite:///{db}",
        load_reference(),
        clock=lambda: NOW,
        database_label="~/.local/share/PumpClinic/demo-clinic.sqlite3",
    )
    create_demo_clinic(services.context)
    users = {u.role.value: u for u in DEMO_USERS}

    login = LoginDialog(
        services,
        services.settings.get()[0].clinic_name,
        users["nurse"].username,
        users["nurse"].password,
        demo_note(DEMO_USERS),
    )
    login.resize(560, login.sizeHint().height())
    login.show()
    save(login, out / "login.png")
    login.close()

    nurse = services.users.authenticate(users["nurse"].username, users["nurse"].password)
    window = MainWindow(services, nurse)
    window.resize(1280, 800)
    window.show()
    window.page("patients")  # pages are built when first shown: this one now
    save(window, out / "patients.png")
    for key in ("today", "alerts", "refills", "screening"):
        window.show_page(key)
        window.page(key)
        if key == "screening" and window.screening_page.board_model.rowCount():
            window.screening_page.table.selectRow(0)
        save(window, out / f"{key}.png")
    window.show_page("patients")
    window.patients_page.table.selectRow(5)
    window.patients_page.open_selected()
    save(window, out / "patient-page.png")
    window.patients_page.show_list()

    window.patients_page.table.selectRow(3)
    dialog = window.patients_page.edit_selected()
    assert dialog is not None
    dialog.resize(1040, 780)
    save(dialog, out / "patient-form.png")
    dialog.close()
    window.close()

    admin = services.users.authenticate(users["admin"].username, users["admin"].password)
    admin_window = MainWindow(services, admin)
    admin_window.resize(1280, 800)
    admin_window.show()
    admin_window.page("admin")
    save(admin_window, out / "admin-users.png")
    admin_window.admin_page.show_tab("settings")
    save(admin_window, out / "admin-settings.png")
    admin_window.close()
    services.close()
    app.quit()


if __name__ == "__main__":
    main()

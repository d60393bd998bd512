"""The Patients page: a searchable, sortable registry and the add/edit form."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from PySide6.QtCore import (
    QDate,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QPlainTextEdit,
    QScrollArea,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.domain.enums import Sex, SpasticityOrigin
from pumpclinic.domain.patients import PatientInput
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.errors import ServiceError, StaleRecord, ValidationFailed
from pumpclinic.services.patients import PatientRecord, PatientRow
from pumpclinic.services.permissions import Permission, can
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.errors import guarded, show_bug, show_known_error
from pumpclinic.ui.models import AnyIndex, CheckListModel, RowTableModel, TextFilterProxy
from pumpclinic.ui.widgets import (
    FieldErrorLabels,
    banner,
    button,
    page_header,
    primary_button,
    set_banner,
)

DATE_FORMAT = "dd MMM yyyy"
SEX_LABELS = {
    Sex.UNKNOWN: "Not recorded",
    Sex.FEMALE: "Female",
    Sex.MALE: "Male",
    Sex.OTHER: "Other",
}


class PatientTableModel(RowTableModel[PatientRow]):
    COLUMNS = ("MRN", "Name", "Date of birth", "Origin", "Diagnosis", "Pump / status", "Risk flags")

    def set_rows(self, rows: Sequence[PatientRow]) -> None:
        self._reset(rows)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        return self.cell(index.row(), index.column(), role)

    def cell(self, row: int, column: int, role: int) -> object:
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._text(self._rows[row], column)
        if role == Qt.ItemDataRole.ForegroundRole and column == 6 and self._rows[row].risk_flags:
            return QColor("#b3261e")
        return None

    @staticmethod
    def _text(p: PatientRow, column: int) -> str:
        if column == 0:
            return p.mrn
        if column == 1:
            return p.display_name
        if column == 2:
            return f"{p.date_of_birth:%d %b %Y} ({p.age_years} y)"
        if column == 3:
            return p.spasticity_origin.label
        if column == 4:
            return p.diagnosis
        if column == 5:
            return p.pump_status
        return ", ".join(p.risk_flags) or "—"

    def search_text(self, row: int) -> str:
        """What the search matches: MRN, family and given name, diagnosis, pump status."""
        p = self._rows[row]
        return " ".join((p.mrn, p.family_name, p.given_name, p.diagnosis, p.pump_status)).casefold()

    def sort_key(self, row: int, column: int) -> object:
        p = self._rows[row]
        if column == 0:
            return p.mrn.casefold()
        if column == 1:
            return f"{p.family_name.casefold()}\t{p.given_name.casefold()}"
        if column == 2:
            return p.date_of_birth.isoformat()
        if column == 3:
            return p.spasticity_origin.value
        if column == 4:
            return p.diagnosis.casefold()
        if column == 5:
            return p.pump_status.casefold()
        return len(p.risk_flags)


class PatientsPage(QWidget):
    """The registry; Enter or a double-click opens the patient's own page in its place."""

    FITTED_COLUMNS = (0, 2, 3)  # MRN, date of birth, origin

    def __init__(
        self, services: Services, actor: Actor, bus: DataBus, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("patientsPage")
        self._services = services
        self._actor = actor
        self._bus = bus
        self.can_view = can(actor, Permission.VIEW_PATIENTS)
        self.can_edit = can(actor, Permission.EDIT_PATIENTS)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        # The list, and one patient's page in its place when a patient is opened.
        self.stack = QStackedWidget()
        self.stack.setObjectName("patientsStack")
        outer.addWidget(self.stack)
        self.list_view = QWidget()
        self.stack.addWidget(self.list_view)
        layout = QVBoxLayout(self.list_view)
        layout.setContentsMargins(24, 18, 24, 18)
        layout.addWidget(
            page_header(
                "Patients", "Everyone the clinic follows: search by name, MRN or diagnosis."
            )
        )
        self.model = PatientTableModel(self)
        self.proxy = TextFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        if not self.can_view:
            info = banner("patientsNoAccess", "info")
            set_banner(info, ["Patient records are not part of the administrator role."], "")
            layout.addWidget(info)
            layout.addStretch(1)
            return

        toolbar = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setObjectName("patientSearch")
        self.search.setAccessibleName("Search patients")
        self.search.setPlaceholderText("Search name, MRN or diagnosis…  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(340)
        self.search.textChanged.connect(self._filter)
        toolbar.addWidget(self.search)
        self.count_label = QLabel()
        self.count_label.setObjectName("patientCount")
        toolbar.addWidget(self.count_label)
        toolbar.addStretch(1)
        self.edit_button = button("&Details…" if not self.can_edit else "&Edit…", "editPatient")
        self.edit_button.clicked.connect(self.edit_selected)
        self.edit_button.setEnabled(False)
        toolbar.addWidget(self.edit_button)
        self.open_button = button("&Open patient", "openPatient")
        self.open_button.setToolTip("Pump, reservoir and refills (Enter or double-click)")
        self.open_button.clicked.connect(self.open_selected)
        self.open_button.setEnabled(False)
        toolbar.addWidget(self.open_button)
        self.new_button = primary_button("&New patient…", "newPatient")
        self.new_button.setToolTip("Add a patient (Ctrl+N)")
        self.new_button.clicked.connect(self.new_patient)
        self.new_button.setVisible(self.can_edit)
        toolbar.addWidget(self.new_button)
        layout.addLayout(toolbar)

        self.table = QTableView()
        self.table.setObjectName("patientTable")
        self.table.setAccessibleName("Patient list")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # Short, fixed-format columns fit their contents (judged on the first 200 rows) when
        # the list is loaded, not at each keystroke of a search; the diagnosis takes whatever
        # room is left, so nothing scrolls sideways.
        header.setResizeContentsPrecision(200)
        for column, width in ((1, 170), (5, 185), (6, 170)):
            self.table.setColumnWidth(column, width)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda _index: self.open_selected())
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        # A selected row that the search hides, or a reload, ends the selection silently.
        self.proxy.layoutChanged.connect(self._selection_changed)
        self.proxy.modelReset.connect(self._selection_changed)
        layout.addWidget(self.table, 1)

        QShortcut(QKeySequence.StandardKey.Find, self, self._focus_search)
        if self.can_edit:
            QShortcut(QKeySequence.StandardKey.New, self, self.new_patient)
        QShortcut(QKeySequence(Qt.Key.Key_Return), self.table, self.open_selected)
        from pumpclinic.ui.patient_page import PatientPage  # it uses this module's dialog

        self.patient_page = PatientPage(services, actor, bus)
        self.patient_page.back_requested.connect(self.show_list)
        self.stack.addWidget(self.patient_page)
        bus.changed.connect(self._on_changed)
        self.refresh()

    # --- data ---------------------------------------------------------------------------

    def refresh(self) -> None:
        rows = guarded(self, lambda: self._services.patients.list_patients(self._actor))
        if rows is not None:
            self.model.set_rows(rows)
            for column in self.FITTED_COLUMNS:
                self.table.resizeColumnToContents(column)
        self._update_count()

    def _on_changed(self, entities: frozenset[str]) -> None:
        if entities & {"patient", "pump", "trial", "settings"}:
            self.refresh()

    def _filter(self, text: str) -> None:
        self.proxy.set_search_text(text)
        self._update_count()

    def _update_count(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        noun = "patient" if total == 1 else "patients"
        self.count_label.setText(
            f"{total} {noun}" if shown == total else f"{shown} of {total} {noun}"
        )

    def selected_patient_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.row_at(self.proxy.mapToSource(rows[0]).row()).id

    def _selection_changed(self) -> None:
        selected = self.selected_patient_id() is not None
        self.edit_button.setEnabled(selected)
        self.open_button.setEnabled(selected)

    def open_selected(self) -> None:
        """Show the selected patient's page (pump card, reservoir, refills)."""
        patient_id = self.selected_patient_id()
        if patient_id is not None:
            self.open_patient(patient_id)

    def open_patient(self, patient_id: int) -> None:
        self.patient_page.show_patient(patient_id)
        self.stack.setCurrentWidget(self.patient_page)

    def show_list(self) -> None:
        self.stack.setCurrentWidget(self.list_view)
        self.table.setFocus()

    def _focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    # --- actions ------------------------------------------------------------------------

    def new_patient(self) -> PatientDialog:
        dialog = PatientDialog(self._services, self._actor, None, self)
        dialog.saved.connect(lambda _record: self._bus.notify("patient"))
        dialog.open()
        return dialog

    def edit_selected(self) -> PatientDialog | None:
        patient_id = self.selected_patient_id()
        if patient_id is None:
            return None
        record = guarded(self, lambda: self._services.patients.get_patient(self._actor, patient_id))
        if record is None:
            return None
        dialog = PatientDialog(self._services, self._actor, record, self)
        dialog.saved.connect(lambda _record: self._bus.notify("patient"))
        dialog.open()
        return dialog


class PatientDialog(QDialog):
    """Add or edit a patient. Field errors appear under their fields; warnings on top."""

    saved = Signal(object)  # PatientRecord

    def __init__(
        self,
        services: Services,
        actor: Actor,
        record: PatientRecord | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("patientDialog")
        self._services = services
        self._actor = actor
        self._record = record
        self.read_only = not can(actor, Permission.EDIT_PATIENTS)
        leaflet = services.context.reference.leaflet
        if record is None:
            title = "New patient"
        else:
            title = (
                f"{record.data.family_name.upper()}, {record.data.given_name} — {record.data.mrn}"
            )
        self.setWindowTitle(title)
        self.resize(1040, 760)
        self.errors = FieldErrorLabels()

        outer = QVBoxLayout(self)
        heading = QLabel(title)
        heading.setObjectName("pageTitle")
        outer.addWidget(heading)
        hint = QLabel("Fields marked * are required.")
        hint.setObjectName("pageSubtitle")
        outer.addWidget(hint)
        self.warning_banner = banner("patientWarnings")
        outer.addWidget(self.warning_banner)
        self.error_banner = banner("patientErrors")
        outer.addWidget(self.error_banner)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        body = QWidget()
        grid = QGridLayout(body)
        grid.setHorizontalSpacing(14)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)

        # Identity
        self.mrn = self._line("mrn", "MRN", 32)
        self.family_name = self._line("family_name", "Family name", 100)
        self.given_name = self._line("given_name", "Given name", 100)
        self.date_of_birth = QDateEdit()
        self.date_of_birth.setObjectName("date_of_birth")
        self.date_of_birth.setAccessibleName("Date of birth")
        self.date_of_birth.setDisplayFormat(DATE_FORMAT)
        self.date_of_birth.setCalendarPopup(True)
        # The minimum date stands for "not entered yet" and shows as blank.
        self.date_of_birth.setMinimumDate(QDate(1899, 12, 31))
        self.date_of_birth.setSpecialValueText(" ")
        self.date_of_birth.setDate(self.date_of_birth.minimumDate())
        self.sex = QComboBox()
        self.sex.setObjectName("sex")
        self.sex.setAccessibleName("Sex")
        for value, text in SEX_LABELS.items():
            self.sex.addItem(text, value.value)
        identity = QGroupBox("Identity")
        form = self._form(identity)
        self._row(form, "MRN *", self.mrn, "mrn")
        self._row(form, "Family name *", self.family_name, "family_name")
        self._row(form, "Given name *", self.given_name, "given_name")
        self._row(form, "Date of birth *", self.date_of_birth, "date_of_birth")
        self._row(form, "Sex", self.sex, "sex")
        grid.addWidget(identity, 0, 0)

        # Clinical
        self.origin = QComboBox()
        self.origin.setObjectName("spasticity_origin")
        self.origin.setAccessibleName("Spasticity origin")
        self.origin.addItem("Choose…", "")
        for origin in SpasticityOrigin:
            self.origin.addItem(origin.label, origin.value)
        self.diagnosis = self._line("diagnosis", "Diagnosis", 300)
        self.sci = self._check("sci_at_or_above_t6", "Spinal cord injury at or above T6")
        self.communication = self._check("communication_difficulties", "Communication difficulties")
        self.previous_withdrawal = self._check(
            "previous_withdrawal", "Previous baclofen withdrawal"
        )
        self.pregnant = self._check("pregnant", "Pregnant")
        self.breastfeeding = self._check("breastfeeding", "Breast-feeding")
        self.allergies = self._text("allergies", "Allergies")
        clinical = QGroupBox("Clinical")
        form = self._form(clinical)
        self._row(form, "Spasticity origin *", self.origin, "spasticity_origin")
        self._row(form, "Diagnosis *", self.diagnosis, "diagnosis")
        flags = QWidget()
        flags_layout = QVBoxLayout(flags)
        flags_layout.setContentsMargins(0, 0, 0, 0)
        for box in (self.sci, self.communication, self.previous_withdrawal):
            flags_layout.addWidget(box)
        self._row(form, "Withdrawal risk", flags, "risk_flags")
        pregnancy = QWidget()
        pregnancy_layout = QHBoxLayout(pregnancy)
        pregnancy_layout.setContentsMargins(0, 0, 0, 0)
        pregnancy_layout.addWidget(self.pregnant)
        pregnancy_layout.addWidget(self.breastfeeding)
        pregnancy_layout.addStretch(1)
        self._row(form, "Pregnancy", pregnancy, "pregnant")
        self._row(form, "Allergies", self.allergies, "allergies")
        grid.addWidget(clinical, 1, 0)

        # Contact
        self.phone = self._line("phone", "Phone", 50)
        self.email = self._line("email", "Email", 200)
        self.address = self._text("address", "Address")
        self.contact_name = self._line("contact_name", "Emergency contact name", 200)
        self.contact_relationship = self._line(
            "contact_relationship", "Emergency contact relationship", 100
        )
        self.contact_phone = self._line("contact_phone", "Emergency contact phone", 50)
        contact = QGroupBox("Contact")
        form = self._form(contact)
        self._row(form, "Phone", self.phone, "phone")
        self._row(form, "Email", self.email, "email")
        self._row(form, "Address", self.address, "address")
        self._row(form, "Emergency contact", self.contact_name, "contact_name")
        self._row(form, "Relationship", self.contact_relationship, "contact_relationship")
        self._row(form, "Contact phone", self.contact_phone, "contact_phone")
        grid.addWidget(contact, 2, 0)

        # Leaflet lists
        self.conditions_model = CheckListModel(
            [(i.id, i.label) for i in leaflet.precaution_conditions], self
        )
        conditions = QGroupBox("Conditions (leaflet precautions)")
        conditions_layout = QVBoxLayout(conditions)
        self.conditions_view = self._check_list("conditions", self.conditions_model)
        self.conditions_view.setMinimumHeight(180)  # all ten conditions without scrolling
        conditions_layout.addWidget(self.conditions_view)
        conditions_layout.addWidget(self.errors.label_for("conditions", self.conditions_view))
        grid.addWidget(conditions, 0, 1)

        medicine_entries = [(i.id, i.label) for i in leaflet.interacting_medicines] + [
            (i.id, f"{i.label} (CNS depressant)") for i in leaflet.cns_depressant_classes
        ]
        self.medicines_model = CheckListModel(medicine_entries, self)
        medicines = QGroupBox("Current medicines that interact with baclofen")
        medicines_layout = QVBoxLayout(medicines)
        self.medicines_view = self._check_list("medicines", self.medicines_model)
        self.medicines_view.setMinimumHeight(220)
        medicines_layout.addWidget(self.medicines_view)
        medicines_layout.addWidget(self.errors.label_for("medicines", self.medicines_view))
        self.other_medicines = self._text("other_medicines", "Other medicines")
        other_label = QLabel("Other current medicines")
        medicines_layout.addWidget(other_label)
        medicines_layout.addWidget(self.other_medicines)
        medicines_layout.addWidget(self.errors.label_for("other_medicines", self.other_medicines))
        grid.addWidget(medicines, 1, 1)

        self.notes = self._text("notes", "Notes")
        notes = QGroupBox("Notes")
        notes_layout = QVBoxLayout(notes)
        notes_layout.addWidget(self.notes)
        notes_layout.addWidget(self.errors.label_for("notes", self.notes))
        grid.addWidget(notes, 2, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = button("Cancel" if not self.read_only else "Close", "cancelPatient")
        self.cancel_button.clicked.connect(self.reject)
        buttons.addWidget(self.cancel_button)
        self.save_button = primary_button("&Save patient", "savePatient")
        self.save_button.clicked.connect(self.save)
        self.save_button.setVisible(not self.read_only)
        buttons.addWidget(self.save_button)
        outer.addLayout(buttons)
        QShortcut(QKeySequence.StandardKey.Save, self, self.save)

        if record is not None:
            self._load(record.data)
        for signal in (
            self.date_of_birth.dateChanged,
            self.medicines_model.checked_changed,
            self.pregnant.toggled,
            self.breastfeeding.toggled,
        ):
            signal.connect(self._update_warnings)
        self._update_warnings()
        if self.read_only:
            body.setEnabled(False)
            hint.setText("Read only: your role may view but not change patient records.")

    # --- building helpers ---------------------------------------------------------------

    def _line(self, name: str, accessible: str, max_length: int) -> QLineEdit:
        widget = QLineEdit()
        widget.setObjectName(name)
        widget.setAccessibleName(accessible)
        widget.setMaxLength(max_length + 50)  # longer input still reaches the validator
        return widget

    def _text(self, name: str, accessible: str) -> QPlainTextEdit:
        widget = QPlainTextEdit()
        widget.setObjectName(name)
        widget.setAccessibleName(accessible)
        widget.setTabChangesFocus(True)
        widget.setFixedHeight(62)
        return widget

    def _check(self, name: str, text: str) -> QCheckBox:
        widget = QCheckBox(text)
        widget.setObjectName(name)
        widget.setAccessibleName(text)
        return widget

    def _check_list(self, name: str, model: CheckListModel) -> QListView:
        view = QListView()
        view.setObjectName(f"{name}List")
        view.setAccessibleName(name.capitalize())
        view.setModel(model)
        view.setUniformItemSizes(True)
        return view

    def _form(self, box: QGroupBox) -> QFormLayout:
        outer = QVBoxLayout(box)
        form = QFormLayout()
        outer.addLayout(form)
        outer.addStretch(1)  # rows stay together at the top when the box is taller
        # Labels at the top of their row: rows grow when an error appears below a field.
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setVerticalSpacing(4)
        return form

    def _row(self, form: QFormLayout, label: str, widget: QWidget, field: str) -> None:
        column = QWidget()
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        layout.addWidget(widget)
        layout.addWidget(self.errors.label_for(field, widget))
        layout.addStretch(1)
        form.addRow(label, column)

    # --- data ---------------------------------------------------------------------------

    def _date_of_birth(self) -> dt.date | None:
        if self.date_of_birth.date() == self.date_of_birth.minimumDate():
            return None
        qdate = self.date_of_birth.date()
        return dt.date(qdate.year(), qdate.month(), qdate.day())

    def collect(self) -> PatientInput:
        return PatientInput(
            mrn=self.mrn.text(),
            family_name=self.family_name.text(),
            given_name=self.given_name.text(),
            date_of_birth=self._date_of_birth(),
            sex=str(self.sex.currentData()),
            spasticity_origin=str(self.origin.currentData()),
            diagnosis=self.diagnosis.text(),
            sci_at_or_above_t6=self.sci.isChecked(),
            communication_difficulties=self.communication.isChecked(),
            previous_withdrawal=self.previous_withdrawal.isChecked(),
            allergies=self.allergies.toPlainText(),
            other_medicines=self.other_medicines.toPlainText(),
            pregnant=self.pregnant.isChecked(),
            breastfeeding=self.breastfeeding.isChecked(),
            phone=self.phone.text(),
            email=self.email.text(),
            address=self.address.toPlainText(),
            notes=self.notes.toPlainText(),
            contact_name=self.contact_name.text(),
            contact_relationship=self.contact_relationship.text(),
            contact_phone=self.contact_phone.text(),
            condition_codes=self.conditions_model.checked_codes(),
            medicine_codes=self.medicines_model.checked_codes(),
        )

    def _load(self, data: PatientInput) -> None:
        self.mrn.setText(data.mrn)
        self.family_name.setText(data.family_name)
        self.given_name.setText(data.given_name)
        if data.date_of_birth is not None:
            born = data.date_of_birth
            self.date_of_birth.setDate(QDate(born.year, born.month, born.day))
        self.sex.setCurrentIndex(max(0, self.sex.findData(data.sex)))
        self.origin.setCurrentIndex(max(0, self.origin.findData(data.spasticity_origin)))
        self.diagnosis.setText(data.diagnosis)
        self.sci.setChecked(data.sci_at_or_above_t6)
        self.communication.setChecked(data.communication_difficulties)
        self.previous_withdrawal.setChecked(data.previous_withdrawal)
        self.pregnant.setChecked(data.pregnant)
        self.breastfeeding.setChecked(data.breastfeeding)
        self.allergies.setPlainText(data.allergies)
        self.other_medicines.setPlainText(data.other_medicines)
        self.phone.setText(data.phone)
        self.email.setText(data.email)
        self.address.setPlainText(data.address)
        self.notes.setPlainText(data.notes)
        self.contact_name.setText(data.contact_name)
        self.contact_relationship.setText(data.contact_relationship)
        self.contact_phone.setText(data.contact_phone)
        self.conditions_model.set_checked_codes(data.condition_codes)
        self.medicines_model.set_checked_codes(data.medicine_codes)

    def _update_warnings(self) -> None:
        warnings = self._services.patients.warnings(self.collect())
        set_banner(self.warning_banner, [w.message for w in warnings])

    def save(self) -> None:
        if self.read_only:
            return
        data = self.collect()
        set_banner(self.error_banner, [])
        try:
            if self._record is None:
                record = self._services.patients.create_patient(self._actor, data)
            else:
                record = self._services.patients.update_patient(
                    self._actor, self._record.id, self._record.version, data
                )
        except ValidationFailed as failure:
            leftover = self.errors.show(failure.errors)
            set_banner(
                self.error_banner,
                ["Not saved: correct the fields marked in red.", *leftover],
            )
            return
        except StaleRecord as stale:
            set_banner(self.error_banner, [str(stale)])
            show_known_error(self, stale, "Changed by someone else")
            return
        except ServiceError as error:
            show_known_error(self, error)
            return
        except Exception as error:  # a bug: logged with its traceback
            show_bug(self, error)
            return
        self.errors.clear()
        self._record = record
        self.saved.emit(record)
        self.accept()

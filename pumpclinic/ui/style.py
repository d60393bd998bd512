"""The application's look: one stylesheet, a calm clinical palette."""

from __future__ import annotations

from pumpclinic.resource_paths import resources_dir

ACCENT = "#1f5f8b"
DANGER = "#b3261e"
WARNING_BG = "#fff4e5"
WARNING_FG = "#7a4100"

_ICONS = (resources_dir() / "icons").as_posix()

STYLESHEET = f"""
QWidget {{ font-size: 10pt; }}
QMainWindow, QDialog {{ background: #f6f8fa; }}
#navigation {{
    background: #1d2b3a; color: #dfe7ef; border: none; padding-top: 8px;
    font-size: 11pt; outline: none;
}}
#navigation::item {{ padding: 10px 14px; border-left: 4px solid transparent; }}
#navigation::item:selected {{
    background: #2c4157; color: white; border-left: 4px solid #5fb0e8;
}}
#navigation::item:hover:!selected {{ background: #24364a; }}
#brand {{
    background: #1d2b3a; color: white; font-size: 14pt; font-weight: 600;
    padding: 14px 14px 6px 14px;
}}
#brandSub {{ background: #1d2b3a; color: #9fb3c8; padding: 0 14px 10px 14px; }}
#pageTitle {{ font-size: 16pt; font-weight: 600; color: #1d2b3a; }}
#pageSubtitle {{ color: #52606d; }}
#card {{ background: white; border: 1px solid #d9e2ec; border-radius: 6px; }}
QTableView {{
    background: white; alternate-background-color: #f3f7fb; gridline-color: #e4e9ef;
    border: 1px solid #d9e2ec; selection-background-color: #cfe3f3; selection-color: black;
}}
QHeaderView::section {{
    background: #eef2f6; padding: 5px 6px; border: none;
    border-right: 1px solid #d9e2ec; border-bottom: 1px solid #d9e2ec; font-weight: 600;
}}
QPushButton {{
    padding: 5px 14px; border: 1px solid #bcccdc; border-radius: 4px; background: white;
}}
QPushButton:hover {{ background: #eef4fa; }}
QPushButton:disabled {{ color: #9aa5b1; background: #f0f2f4; }}
QPushButton[primary="true"] {{ background: {ACCENT}; color: white; border-color: {ACCENT}; }}
QPushButton[primary="true"]:hover {{ background: #184d72; }}
QPushButton[primary="true"]:disabled {{ background: #9fb3c8; border-color: #9fb3c8; }}
QLineEdit, QComboBox, QDateEdit, QTimeEdit, QSpinBox, QDoubleSpinBox, QPlainTextEdit {{
    padding: 3px 5px; border: 1px solid #bcccdc; border-radius: 3px; background: white;
}}
QSpinBox::up-button, QDoubleSpinBox::up-button, QDateEdit::up-button, QTimeEdit::up-button {{
    subcontrol-origin: border; subcontrol-position: top right; width: 18px;
    border-left: 1px solid #d9e2ec; border-bottom: 1px solid #d9e2ec;
}}
QSpinBox::down-button, QDoubleSpinBox::down-button, QDateEdit::down-button,
QTimeEdit::down-button {{
    subcontrol-origin: border; subcontrol-position: bottom right; width: 18px;
    border-left: 1px solid #d9e2ec;
}}
QSpinBox::up-button:hover, QDoubleSpinBox::up-button:hover, QSpinBox::down-button:hover,
QDoubleSpinBox::down-button:hover, QTimeEdit::up-button:hover,
QTimeEdit::down-button:hover, QDateEdit::up-button:hover, QDateEdit::down-button:hover,
QComboBox::drop-down:hover, QDateEdit::drop-down:hover {{ background: #eef4fa; }}
QSpinBox::up-arrow, QDoubleSpinBox::up-arrow, QDateEdit::up-arrow, QTimeEdit::up-arrow {{
    image: url({_ICONS}/arrow-up.svg); width: 9px; height: 6px;
}}
QSpinBox::down-arrow, QDoubleSpinBox::down-arrow, QDateEdit::down-arrow, QTimeEdit::down-arrow,
QComboBox::down-arrow {{
    image: url({_ICONS}/arrow-down.svg); width: 9px; height: 6px;
}}
QComboBox::drop-down, QDateEdit::drop-down {{
    subcontrol-origin: padding; subcontrol-position: top right; width: 20px;
    border-left: 1px solid #d9e2ec;
}}
QLineEdit[invalid="true"], QComboBox[invalid="true"], QDateEdit[invalid="true"],
QTimeEdit[invalid="true"], QSpinBox[invalid="true"], QDoubleSpinBox[invalid="true"],
QPlainTextEdit[invalid="true"] {{ border: 2px solid {DANGER}; }}
#fieldError {{ color: {DANGER}; }}
QLabel[banner="warning"] {{
    background: {WARNING_BG}; color: {WARNING_FG}; border: 1px solid #f0b35b;
    border-radius: 4px; padding: 6px 8px;
}}
QLabel[banner="info"] {{
    background: #e8f1fa; color: #184d72; border: 1px solid #9cc3e5; border-radius: 4px;
    padding: 8px 10px;
}}
QGroupBox {{
    font-weight: 600; border: 1px solid #d9e2ec; border-radius: 6px; margin-top: 12px;
    padding: 10px 8px 8px 8px; background: white;
}}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; }}
QStatusBar {{ background: #eef2f6; color: #334e68; }}
QStatusBar QLabel {{ padding: 0 8px; }}
QTabWidget::pane {{ border: 1px solid #d9e2ec; background: white; }}
QTabBar::tab {{ padding: 6px 14px; }}
QTableView::item {{ padding-left: 6px; padding-right: 6px; }}
QLabel#fieldHelp {{ color: #52606d; font-size: 9pt; }}
QLabel#settingsStatus[state="saved"], QLabel#pumpModelsStatus[state="saved"],
QLabel#drugProductsStatus[state="saved"] {{ color: #1e7d32; font-weight: 600; }}
QLabel#settingsStatus[state="dirty"], QLabel#pumpModelsStatus[state="dirty"],
QLabel#drugProductsStatus[state="dirty"] {{ color: #7a4100; }}
QLabel#catalogSectionTitle {{ font-size: 11pt; font-weight: 600; color: #1d2b3a; }}
QLabel#usersCount, QLabel#patientCount {{ color: #52606d; }}
QLabel#dialogIntro {{ color: #334e68; }}
"""

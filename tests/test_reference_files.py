"""The shipped reference files, and what an admin sees when an edited copy is broken."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pumpclinic.domain.enums import PumpKind
from pumpclinic.domain.reference import ReferenceDataError, SideEffectSeverity
from pumpclinic.reference_files import RESOURCES_DIR, load_reference, resources_dir

FILE_NAMES = ("pumps.json", "drugs.json", "screening-protocols.json", "leaflet.json")


@pytest.fixture
def resources_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "resources"
    copy.mkdir()
    for name in FILE_NAMES:
        shutil.copy(RESOURCES_DIR / name, copy / name)
    return copy


def edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


# --- The shipped files ----------------------------------------------------------------------


def test_resources_dir_is_the_top_level_resources_folder() -> None:
    assert Path(__file__).resolve().parent.parent / "resources" == RESOURCES_DIR
    for name in FILE_NAMES:
        assert (RESOURCES_DIR / name).is_file()


def test_shipped_pump_catalog() -> None:
    reference = load_reference(RESOURCES_DIR)

    assert {p.id for p in reference.pump_models} >= {
        "synchromed-ii-20",
        "synchromed-ii-40",
        "prometra-ii-20",
        "prometra-ii-40",
        "codman-3000-30",
    }
    synchromed_20 = reference.pump_model("synchromed-ii-20")
    assert (synchromed_20.reservoir_ml, synchromed_20.low_reservoir_alarm_ml) == (20.0, 2.0)
    assert synchromed_20.pocket_fill_warning_ml == 1.0
    assert synchromed_20.max_flex_steps == 13
    assert synchromed_20.flow_accuracy_pct == 14.5
    assert (synchromed_20.battery_life_years, synchromed_20.eri_days_before_end) == (7, 90)
    assert reference.pump_model("synchromed-ii-40").reservoir_ml == 40.0
    assert reference.pump_model("synchromed-ii-40").pocket_fill_warning_ml == 2.0
    prometra = reference.pump_model("prometra-ii-40")
    assert prometra.low_reservoir_alarm_ml == 3.0
    assert prometra.plans_refill_with_boluses is True
    assert prometra.min_patient_age_years == 12
    assert prometra.allowed_concentrations_mcg_per_ml == (500.0, 1000.0, 2000.0)
    assert prometra.battery_life_years == 10
    codman = reference.pump_model("codman-3000-30")
    assert codman.kind is PumpKind.CONSTANT_FLOW
    assert codman.constant_flow_ml_per_day == 1.0
    assert (codman.battery_life_years, codman.max_flex_steps) == (None, 0)


def test_shipped_drug_products() -> None:
    reference = load_reference(RESOURCES_DIR)

    by_id = {p.id: p for p in reference.drug_products}
    assert {i: p.concentration_mcg_per_ml for i, p in by_id.items()} == {
        "baclofen-50": 50.0,
        "baclofen-500": 500.0,
        "baclofen-1000": 1000.0,
        "baclofen-2000": 2000.0,
    }
    assert [i for i, p in by_id.items() if p.screening_only] == ["baclofen-50"]
    assert {p.stability_days for p in reference.drug_products} == {77}


def test_shipped_screening_protocols() -> None:
    reference = load_reference(RESOURCES_DIR)

    standard = reference.screening_protocol("standard")
    assert [(d.number, d.dose_mcg, d.volume_ml) for d in standard.doses] == [
        (1, 50.0, 1.0),
        (2, 75.0, 1.5),
        (3, 100.0, 2.0),
    ]
    assert standard.concentration_mcg_per_ml == 50.0
    assert standard.min_interval_hours == 24.0
    assert (standard.assess_from_hours, standard.observe_until_hours) == (4.0, 8.0)
    assert standard.vitals_watch_hours == 2.0
    small_child = reference.screening_protocol("small-child")
    assert [(d.dose_mcg, d.volume_ml) for d in small_child.doses] == [
        (25.0, 0.5),
        (50.0, 1.0),
        (75.0, 1.5),
    ]


def test_shipped_leaflet_lists() -> None:
    leaflet = load_reference(RESOURCES_DIR).leaflet

    assert len(leaflet.interacting_medicines) == 29
    assert len(leaflet.precaution_conditions) == 10
    assert len(leaflet.overdose_signs) == 7
    assert len(leaflet.withdrawal_signs) == 9
    assert len(leaflet.treated_conditions) == 3
    assert len(leaflet.cns_depressant_classes) == 7
    assert len(leaflet.side_effects) == 27
    seek_care = [i.id for i in leaflet.side_effects if i.severity is SideEffectSeverity.SEEK_CARE]
    assert seek_care[0] == "seizures"
    assert len(seek_care) == 8
    assert leaflet.item("interacting_medicines", "morphine-sulfate-liposome").label == (
        "Morphine Sulfate Liposome"
    )
    assert leaflet.item("precaution_conditions", "history-of-withdrawal").label == (
        "History of withdrawal symptoms"
    )
    assert {"morphine", "zolpidem", "sodium-oxybate"} <= leaflet.interacting_medicine_ids


# --- Broken copies --------------------------------------------------------------------------


def test_copy_loads_like_the_original(resources_copy: Path) -> None:
    assert load_reference(resources_copy) == load_reference(RESOURCES_DIR)


def test_syntax_error_names_file_line_and_column(resources_copy: Path) -> None:
    path = resources_copy / "drugs.json"
    path.write_text('{\n  "schema": 1,\n  "drug_products": [\n    {"id": "x",}\n  ]\n}\n')

    with pytest.raises(ReferenceDataError) as raised:
        load_reference(resources_copy)

    assert raised.value.file_name == "drugs.json"
    assert str(raised.value).startswith("drugs.json: invalid JSON at line 4, column 16: ")


def test_truncated_file(resources_copy: Path) -> None:
    path = resources_copy / "leaflet.json"
    path.write_text(path.read_text(encoding="utf-8")[:500], encoding="utf-8")

    with pytest.raises(ReferenceDataError, match=r"^leaflet\.json: invalid JSON at line \d+"):
        load_reference(resources_copy)


def test_wrong_value_names_file_entry_and_field(resources_copy: Path) -> None:
    def shrink_reservoir(data: Any) -> None:
        data["pump_models"][1]["reservoir_ml"] = 1.5

    edit_json(resources_copy / "pumps.json", shrink_reservoir)

    with pytest.raises(ReferenceDataError) as raised:
        load_reference(resources_copy)

    assert (raised.value.file_name, raised.value.entry) == ("pumps.json", "synchromed-ii-40")
    assert str(raised.value) == (
        'pumps.json, entry "synchromed-ii-40": '
        "low_reservoir_alarm_ml must be less than reservoir_ml (1.5), got 2"
    )


def test_duplicate_key_is_rejected(resources_copy: Path) -> None:
    path = resources_copy / "screening-protocols.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace(
            '"min_interval_hours": 24,', '"min_interval_hours": 24, "min_interval_hours": 2,', 1
        )
    )

    with pytest.raises(ReferenceDataError) as raised:
        load_reference(resources_copy)

    assert str(raised.value) == (
        'screening-protocols.json: invalid JSON: the key "min_interval_hours" appears twice'
        " in one object"
    )


def test_missing_file(resources_copy: Path) -> None:
    (resources_copy / "screening-protocols.json").unlink()

    with pytest.raises(ReferenceDataError) as raised:
        load_reference(resources_copy)

    assert raised.value.file_name == "screening-protocols.json"
    assert str(raised.value) == (
        f"screening-protocols.json: file not found: {resources_copy / 'screening-protocols.json'}"
    )


def test_unreadable_file(resources_copy: Path) -> None:
    (resources_copy / "pumps.json").unlink()
    (resources_copy / "pumps.json").mkdir()

    with pytest.raises(ReferenceDataError, match=r"^pumps\.json: cannot read .*pumps\.json: "):
        load_reference(resources_copy)


def test_file_that_is_not_utf8(resources_copy: Path) -> None:
    (resources_copy / "leaflet.json").write_bytes('{"schema": 1, "x": "Ménière"}'.encode("latin-1"))

    with pytest.raises(ReferenceDataError, match=r"^leaflet\.json: .*is not UTF-8 text"):
        load_reference(resources_copy)


def test_byte_order_mark_is_tolerated(resources_copy: Path) -> None:
    path = resources_copy / "drugs.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())

    assert load_reference(resources_copy).drug_product("baclofen-50").screening_only


def test_environment_variable_points_at_another_folder(
    resources_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def rename(data: Any) -> None:
        data["drug_products"][1]["name"] = "Clinic's own 500"

    edit_json(resources_copy / "drugs.json", rename)
    monkeypatch.setenv("PUMPCLINIC_RESOURCES", str(resources_copy))

    assert resources_dir() == resources_copy
    assert load_reference().drug_product("baclofen-500").name == "Clinic's own 500"
    # An explicit folder wins over the environment.
    assert load_reference(RESOURCES_DIR).drug_product("baclofen-500").name != "Clinic's own 500"

    monkeypatch.setenv("PUMPCLINIC_RESOURCES", "")
    assert resources_dir() == RESOURCES_DIR


def test_a_side_effect_that_is_also_an_overdose_sign_has_the_same_id() -> None:
    """Picking it from either list must raise the overdose banner."""
    leaflet = load_reference().leaflet
    overdose = {item.label.lower() for item in leaflet.overdose_signs}
    overdose_ids = {item.id for item in leaflet.overdose_signs}
    for item in leaflet.side_effects:
        words = set(item.label.lower().replace(",", "").split())
        for sign in leaflet.overdose_signs:
            if words == set(sign.label.lower().replace(",", "").split()):
                assert item.id == sign.id, (item, sign)
    assert "troubled-breathing" in overdose_ids and overdose

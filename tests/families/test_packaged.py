"""A checkpoint split over packages (all-mpnet-base-v2's layout): assembled once from verified
parts; a missing or corrupt part is an error naming it (components.families.packaged)."""

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from components.families import packaged
from components.families.checkpoint import CheckpointError, resolve_checkpoint
from pipeline import cli

NAME = "tiny-split-checkpoint"
PARTS = tuple(f"qqp-tfx-test-part-{i:03d}" for i in range(1, 4))
FILES = {"config.json": json.dumps({"model_type": "mpnet"}).encode(),
         "vocab.txt": b"<s>\n<pad>\n</s>\n<unk>\n[UNK]\n",
         "model.safetensors": bytes(range(256)) * 40}


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode()


def _install_parts(site: Path, skip: int | None = None) -> list[Path]:
    """Writes the zip of FILES (plus an unused extra) split over fake installed packages."""
    joined = io.BytesIO()
    with zipfile.ZipFile(joined, "w") as archive:
        for name, data in FILES.items():
            archive.writestr(f"{NAME}/{name}", data)
        archive.writestr(f"{NAME}/desktop.ini", b"ignored")
    data = joined.getvalue()
    size = -(-len(data) // len(PARTS))
    pieces = []
    for index, part in enumerate(PARTS):
        if index == skip:
            continue
        module = part.replace("-", "_")
        piece = f"{module}/input/{NAME}.zip.{index + 1:03d}"
        chunk = data[index * size:(index + 1) * size]
        (site / piece).parent.mkdir(parents=True)
        (site / piece).write_bytes(chunk)
        info = site / f"{module}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {part}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{piece},{_record_hash(chunk)},{len(chunk)}\n"
                                     f"{info.name}/RECORD,,\n")
        pieces.append(site / piece)
    return pieces


@pytest.fixture
def split_checkpoint(tmp_path, monkeypatch):
    """A fake site directory on sys.path and a checkpoints directory; returns the site."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(packaged.CHECKPOINTS_ENV, str(tmp_path / "checkpoints"))
    monkeypatch.setitem(packaged.PACKAGED, NAME,
                        packaged.SplitCheckpoint(NAME, PARTS, f"{NAME}/",
                                                 files=tuple(FILES)))
    return site


def test_the_parts_are_assembled_once_into_the_checkpoints_directory(split_checkpoint,
                                                                     tmp_path, monkeypatch):
    _install_parts(split_checkpoint)
    directory = Path(packaged.local_dir(NAME))
    assert directory == tmp_path / "checkpoints" / NAME
    assert {path.name for path in directory.iterdir()} == set(FILES) | {".assembled"}
    for name, data in FILES.items():
        assert (directory / name).read_bytes() == data

    def fail(*_):
        raise AssertionError("assembled again")

    monkeypatch.setattr(packaged, "assemble", fail)
    assert packaged.local_dir(NAME) == str(directory)
    assert packaged.assembled_dir(NAME) == str(directory)


def test_a_missing_part_is_named_with_the_install_command(split_checkpoint):
    _install_parts(split_checkpoint, skip=1)
    with pytest.raises(CheckpointError) as error:
        packaged.local_dir(NAME)
    message = str(error.value)
    assert f"part 2 of 3, the package {PARTS[1]}, is not installed" in message
    assert "make mpnet" in message
    assert packaged.assembled_dir(NAME) is None


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_a_corrupt_part_is_named_and_nothing_is_assembled(split_checkpoint, tmp_path, damage):
    pieces = _install_parts(split_checkpoint)
    data = pieces[2].read_bytes()
    pieces[2].write_bytes(data[:-1] + bytes([data[-1] ^ 1]) if damage == "flipped byte"
                          else data[:-10])
    with pytest.raises(CheckpointError) as error:
        packaged.local_dir(NAME)
    message = str(error.value)
    assert f"{pieces[2]} (package {PARTS[2]}) is corrupt" in message
    assert f"--reinstall {PARTS[2]}" in message
    assert packaged.assembled_dir(NAME) is None
    assert not (tmp_path / "checkpoints").exists()  # checked before anything is written


def test_a_joined_zip_without_a_file_the_checkpoint_needs_is_an_error(split_checkpoint,
                                                                      monkeypatch):
    _install_parts(split_checkpoint)
    monkeypatch.setitem(packaged.PACKAGED, NAME, packaged.SplitCheckpoint(
        NAME, PARTS, f"{NAME}/", files=(*FILES, "tokenizer.json")))
    with pytest.raises(CheckpointError, match="the joined zip has no .*tokenizer.json"):
        packaged.local_dir(NAME)


def test_the_checkpoint_name_resolves_to_the_assembled_directory(split_checkpoint):
    _install_parts(split_checkpoint)
    assert resolve_checkpoint(NAME) == packaged.local_dir(NAME)


def test_install_checkpoint_prints_the_directory(split_checkpoint, capsys):
    _install_parts(split_checkpoint)
    assert cli.main(["install-checkpoint", NAME]) == 0
    assert capsys.readouterr().out.strip() == packaged.assembled_dir(NAME)
    assert cli.main(["install-checkpoint", NAME]) == 0
    assert "already assembled" in capsys.readouterr().err


def test_install_checkpoint_reports_a_corrupt_part_with_exit_code_2(split_checkpoint, capsys):
    pieces = _install_parts(split_checkpoint)
    pieces[0].write_bytes(b"not the piece")
    assert cli.main(["install-checkpoint", NAME]) == 2
    assert f"qqp-tfx: error: checkpoint {NAME!r}: {pieces[0]}" in capsys.readouterr().err

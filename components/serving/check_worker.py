"""The serving check's worker: loads a candidate as TF Serving does, in a process of its own.

Run as `python -m components.serving.check_worker --candidate DIR --eval-split DIR
[--served DIR [--wait-for-go]] [--bf16]` in a fresh process, so that nothing the pipeline
loaded counts in its memory. It loads the candidate (`ServingSession`), records the peak
RSS after one `predict_text` call at batch 64 (the loaded version's memory), replays the
warm-up requests the Pusher will write (`components.serving.warmup`) through their
signatures and checks every response, sends the documented bad requests and requires
their InvalidArgument errors, then times `predict_text` at batch 1 and 64, candidate and
served version interleaved (medians). With `--wait-for-go` it reads a line from stdin
before it loads the served version. `--memory-only SERVED --eval-split DIR` loads the
served version, makes the batch-64 call and reports the peak RSS only: its memory,
measured in a fresh process of its own, as peak RSS only grows.

It prints one JSON document on stdout (everything else goes to stderr): `failure` is
null or what the candidate got wrong, in words; `components.serving.check` decides.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the in-graph tokenizer's ops for loading)
from tensorflow_serving.apis import prediction_log_pb2

from components.export.requests import EXAMPLE_RULE
from components.export.signatures import CLASSES
from components.serving import warmup
from components.serving.memory import peak_rss_mib
from components.serving.tf_serving_session import ServingSession

TIMED_BATCH_SIZES = {"b1": 1, "b64": 64}
UNTIMED_CALLS = 2  # per version and batch size, before timing
MIN_REPEATS, MAX_REPEATS = 5, 21  # timed calls per version and batch size
# Time spent timing one batch size (candidate and served together): with a 22M-parameter
# model, about 12 repeats at batch 64 (~0.4 s a call with bf16) and 21 at batch 1.
TIMING_BUDGET_SECONDS = {"b1": 2.0, "b64": 10.0}
SCORE_TOLERANCE = 1e-4  # |scores[0] + scores[1] - 1|
Inputs = dict[str, Any]


class CheckFailure(Exception):
    """What the candidate got wrong, in words."""


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else '(no message)'}"


def timed_batches(pairs: list[warmup.Pair]) -> dict[str, Inputs]:
    """`predict_text` requests at each timed batch size: pairs spread over all lengths
    (the middle-length pair at batch 1), repeated when the split holds fewer."""
    ranked = sorted(pairs, key=lambda pair: (len(pair[0]) + len(pair[1]), pair))
    batches = {}
    for name, size in TIMED_BATCH_SIZES.items():
        if size == 1:
            batch = [ranked[len(ranked) // 2]]
        else:
            batch = [ranked[index * len(ranked) // size] for index in range(size)]
        batches[name] = {"question1": [pair[0] for pair in batch],
                         "question2": [pair[1] for pair in batch]}
    return batches


def request_of(record: prediction_log_pb2.PredictionLog) -> tuple[str, Inputs, int]:
    """A warm-up record as TF Serving runs it: signature, input tensors, batch size."""
    if record.HasField("classify_log"):
        request = record.classify_log.request
        examples = [example.SerializeToString()
                    for example in request.input.example_list.examples]
        return (request.model_spec.signature_name,
                {tf.saved_model.CLASSIFY_INPUTS: examples}, len(examples))
    request = record.predict_log.request
    inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    return request.model_spec.signature_name, inputs, len(next(iter(inputs.values())))


def _check_array(outputs: dict[str, np.ndarray], name: str, shape: tuple[int, ...]
                 ) -> np.ndarray:
    if name not in outputs:
        raise CheckFailure(f"no output {name!r} (it has {', '.join(sorted(outputs))})")
    value = np.asarray(outputs[name])
    if value.shape != shape:
        raise CheckFailure(f"{name} has shape {list(value.shape)}, not {list(shape)}")
    return value


def _check_unit_interval(name: str, value: np.ndarray) -> None:
    value = value.astype(np.float64)
    if not np.all(np.isfinite(value)):
        raise CheckFailure(f"{name} holds {np.sum(~np.isfinite(value))} values that are "
                           "not finite")
    if value.size and (value.min() < 0 or value.max() > 1):
        raise CheckFailure(f"{name} out of [0, 1] (from {value.min():g} to {value.max():g})")


def check_response(is_classify: bool, outputs: dict[str, np.ndarray], rows: int) -> None:
    """Raises CheckFailure unless the response has one row per pair and values in range."""
    if is_classify:
        scores = _check_array(outputs, tf.saved_model.CLASSIFY_OUTPUT_SCORES, (rows, 2))
        _check_unit_interval("scores", scores)
        worst = np.abs(scores.astype(np.float64).sum(axis=1) - 1).max(initial=0.0)
        if worst > SCORE_TOLERANCE:
            raise CheckFailure(f"scores do not sum to 1 (off by up to {worst:g})")
        classes = _check_array(outputs, tf.saved_model.CLASSIFY_OUTPUT_CLASSES, (rows, 2))
        if rows and not np.all(classes == np.array([CLASSES], dtype=object)):
            raise CheckFailure(f"classes are {classes[0].tolist()}, not {list(CLASSES)}")
        return
    _check_unit_interval("probability", _check_array(outputs, "probability", (rows,)))
    label = _check_array(outputs, "label", (rows,))
    if not np.all((label == 0) | (label == 1)):
        raise CheckFailure(f"label holds values other than 0 and 1: "
                           f"{sorted(set(label.tolist()) - {0, 1})[:5]}")


def call(session: ServingSession, signature: str, inputs: Inputs, rows: int,
         is_classify: bool = False) -> None:
    """One request, whose error or out-of-range response is a CheckFailure naming it."""
    where = f"{signature} at batch {rows}"
    try:
        outputs = session.run(signature, inputs)
    except (tf.errors.OpError, KeyError, TypeError, ValueError) as error:
        raise CheckFailure(f"{where} failed: {first_line(error)}") from error
    try:
        check_response(is_classify, outputs, rows)
    except CheckFailure as failure:
        raise CheckFailure(f"{where}: {failure}") from failure


def replay_warmup(session: ServingSession, pairs: list[warmup.Pair]) -> dict:
    """Runs the Pusher's warm-up requests for these pairs; how many, on which signatures."""
    records = warmup.warmup_records(warmup.pick_batches(pairs))
    for record in records:
        signature, inputs, rows = request_of(record)
        call(session, signature, inputs, rows, record.HasField("classify_log"))
    signatures = sorted({request_of(record)[0] for record in records})
    logging.info("answered %d warm-up requests on %s", len(records), ", ".join(signatures))
    return {"requests": len(records), "signatures": signatures}


def bad_requests(pair: warmup.Pair) -> list[tuple[str, Inputs, str]]:
    """The documented bad requests (docs/serving.md "Request errors"): signature, inputs,
    the text their InvalidArgument error must hold."""
    good = warmup.question_example(*pair)
    missing_question2 = warmup.question_example(*pair)
    del missing_question2.features.feature["question2"]
    return [
        ("predict_text", {"question1": [pair[0], pair[1]], "question2": [pair[1]]},
         "question1 has 2 strings and question2 has 1"),
        ("serving_default", {"examples": [good.SerializeToString(),
                                          missing_question2.SerializeToString()]},
         f"tf.Example 1: question2 holds 0 strings; {EXAMPLE_RULE}"),
    ]


def check_bad_requests(session: ServingSession, pair: warmup.Pair) -> int:
    """Raises CheckFailure unless every bad request fails with its documented error."""
    requests = bad_requests(pair)
    for signature, inputs, expected in requests:
        what = f"{signature} with a bad request (expected InvalidArgument: {expected!r})"
        try:
            session.run(signature, inputs)
        except tf.errors.InvalidArgumentError as error:
            if expected not in error.message:
                raise CheckFailure(f"{what} failed with another message: "
                                   f"{first_line(error)}") from error
            continue
        except (tf.errors.OpError, KeyError, TypeError, ValueError) as error:
            raise CheckFailure(f"{what} failed with {first_line(error)}") from error
        raise CheckFailure(f"{what} answered without an error")
    return len(requests)


def time_interleaved(sessions: dict[str, ServingSession], inputs: Inputs,
                     budget_seconds: float) -> dict[str, float]:
    """Median milliseconds of a `predict_text` call per version: untimed calls first, then
    the versions alternate, in turn first, as many rounds as fit in the budget."""
    round_seconds = 0.0
    for session in sessions.values():
        for _ in range(UNTIMED_CALLS):
            start = time.perf_counter()
            session.run("predict_text", inputs)
        round_seconds += time.perf_counter() - start
    repeats = int(min(MAX_REPEATS, max(MIN_REPEATS, budget_seconds // max(round_seconds, 1e-6))))
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for repeat in range(repeats):
        order = list(sessions) if repeat % 2 == 0 else list(sessions)[::-1]
        for name in order:
            start = time.perf_counter()
            sessions[name].run("predict_text", inputs)
            times[name].append(time.perf_counter() - start)
    medians = {name: round(statistics.median(values) * 1000, 3) for name, values in times.items()}
    logging.info("batch %d, %d timed calls each: median %s ms", len(inputs["question1"]),
                 repeats, medians)
    return medians


def load(export_dir: str, bf16: bool, what: str) -> ServingSession:
    logging.info("loading %s from %s (bf16 session config: %s)", what, export_dir, bf16)
    try:
        return ServingSession(export_dir, bf16)
    except Exception as error:  # pylint: disable=broad-except  (any loader error fails)
        raise CheckFailure(f"{what} does not load: {first_line(error)}") from error


def loaded_memory(session: ServingSession, batch: Inputs) -> float:
    """The peak RSS once the version is loaded and has answered one batch-64 call."""
    call(session, "predict_text", batch, len(batch["question1"]))
    memory = round(peak_rss_mib(), 1)
    logging.info("peak memory after one call at batch 64: %.1f MiB", memory)
    return memory


def check_candidate(candidate_dir: str, served_dir: str | None, pairs: list[warmup.Pair],
                    bf16: bool, wait_for_go: bool = False) -> dict:
    """Everything the worker measures; `failure` says what went wrong, if anything."""
    result: dict[str, Any] = {"bf16": bf16, "failure": None, "memory_mib": None,
                              "latency_ms": None, "warmup": None, "bad_requests": None}
    batches = timed_batches(pairs)
    try:
        candidate = load(candidate_dir, bf16, "the candidate")
        result["memory_mib"] = loaded_memory(candidate, batches["b64"])
        result["warmup"] = replay_warmup(candidate, pairs)
        result["bad_requests"] = check_bad_requests(candidate, pairs[0])
        sessions = {"candidate": candidate}
        if served_dir:
            if wait_for_go:
                sys.stdin.readline()  # the served version's memory worker has finished
            sessions["served"] = load(served_dir, bf16, f"the served version ({served_dir})")
    except CheckFailure as failure:
        result["failure"] = str(failure)
        return result
    latency = {name: {} for name in ("candidate", "served")}
    for size_name, inputs in batches.items():
        for name, milliseconds in time_interleaved(
                sessions, inputs, TIMING_BUDGET_SECONDS[size_name]).items():
            latency[name][size_name] = milliseconds
    result["latency_ms"] = {"candidate": latency["candidate"],
                            "served": latency["served"] if served_dir else None}
    return result


def memory_only(served_dir: str, pairs: list[warmup.Pair], bf16: bool) -> dict:
    """The served version's peak memory, loaded and called once (`failure`: why not)."""
    try:
        session = load(served_dir, bf16, f"the served version ({served_dir})")
        return {"bf16": bf16, "failure": None,
                "memory_mib": loaded_memory(session, timed_batches(pairs)["b64"])}
    except CheckFailure as failure:
        return {"bf16": bf16, "failure": str(failure), "memory_mib": None}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--candidate", help="the SavedModel to check")
    mode.add_argument("--memory-only", metavar="SERVED",
                      help="only the peak memory of this SavedModel loaded and called once")
    parser.add_argument("--eval-split", required=True,
                        help="ExampleGen's eval split directory (the warm-up pairs)")
    parser.add_argument("--served", help="the served version's SavedModel, to time against")
    parser.add_argument("--wait-for-go", action="store_true",
                        help="read a line from stdin before loading --served")
    parser.add_argument("--bf16", action="store_true",
                        help="TF Serving's bf16 session config (serving/bf16_platform_config)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Only the result goes to stdout: whatever else writes there lands on stderr.
    result_stream = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s check_worker %(levelname)s: %(message)s", force=True)
    pairs = warmup.read_split_pairs(args.eval_split)
    if not pairs:
        raise ValueError(f"{args.eval_split}: the eval split holds no pairs to send")
    if args.memory_only:
        result = memory_only(args.memory_only, pairs, args.bf16)
    else:
        result = check_candidate(args.candidate, args.served, pairs, args.bf16, args.wait_for_go)
    result_stream.write(json.dumps(result) + "\n")
    result_stream.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

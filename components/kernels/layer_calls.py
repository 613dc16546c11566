"""Keras layers calling other functions while a graph is traced, and their own after.

The training kernels and the serving graph trace the same layers with different
calls (components.kernels.training, components.kernels.serving_graph); these context
managers swap the calls in and always back, after an error too.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterable, Iterator

import tensorflow as tf


@contextlib.contextmanager
def class_call_replaced(cls: type, make_call: Callable[[Callable], Callable]) -> Iterator[None]:
    """Every `cls` layer calls `make_call(original_call)` (a function of the layer and
    its arguments) until the context closes."""
    original_call = cls.call
    cls.call = tf.autograph.experimental.do_not_convert(make_call(original_call))
    try:
        yield
    finally:
        cls.call = original_call


@contextlib.contextmanager
def instance_calls_replaced(layers: Iterable, call: Callable) -> Iterator[int]:
    """Each of `layers` calls `call(layer, *arguments)` until the context closes; yields
    how many layers do. A call a layer had set on itself is set back."""
    replaced = []
    try:
        for layer in layers:
            replaced.append((layer, vars(layer).get("call")))
            layer.call = tf.autograph.experimental.do_not_convert(functools.partial(call, layer))
        yield len(replaced)
    finally:
        for layer, instance_call in replaced:
            if instance_call is None:
                del layer.call
            else:
                layer.call = instance_call

"""Pairs implied by the labels of others: "is a duplicate of" is an equivalence.

If a~b and b~c, then a~c; if a~b and b!~c, then a!~c. `with_implied_pairs`
walks the given pairs in order and, right after each one, yields the pairs it
newly implies (questions are identified by their exact text). Every prefix of
the output is therefore the closure of a prefix of the input, so taking the
first N training examples still takes the pairs where they arise.

Implied pairs get negative ids (-1, -2, ...). A given pair that contradicts
what earlier pairs imply (a~b given while a!~b is implied, or the reverse) is
kept as given but implies nothing; such pairs are counted.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Iterable, Iterator

from components.qqp_records import QqpPair


@dataclasses.dataclass
class ImpliedPairCounts:
    """What `with_implied_pairs` added, and the given pairs it could not use."""

    given: int = 0
    implied_duplicates: int = 0
    implied_non_duplicates: int = 0
    contradicting: int = 0


class _Groups:
    """Questions known to be duplicates of each other, and which groups are known apart."""

    def __init__(self) -> None:
        self.group_of: dict[str, int] = {}
        self.members: dict[int, list[str]] = {}
        self.apart: dict[int, set[int]] = {}

    def group(self, question: str) -> int:
        if question not in self.group_of:
            group = len(self.group_of)
            self.group_of[question] = group
            self.members[group] = [question]
            self.apart[group] = set()
        return self.group_of[question]

    def merge(self, kept: int, merged: int) -> None:
        """Moves every question of group `merged` into group `kept`."""
        for question in self.members[merged]:
            self.group_of[question] = kept
        self.members[kept].extend(self.members.pop(merged))
        for other in self.apart.pop(merged):
            self.apart[other].discard(merged)
            self.apart[other].add(kept)
            self.apart[kept].add(other)


def with_implied_pairs(pairs: Iterable[QqpPair], counts: ImpliedPairCounts
                       ) -> Iterator[QqpPair]:
    """Yields each given pair followed by the pairs it newly implies; fills `counts`."""
    groups = _Groups()
    seen: set[frozenset[str]] = set()
    next_id = itertools.count(-1, -1)

    def new_pairs(firsts: list[str], seconds: list[str], label: int) -> Iterator[QqpPair]:
        for question1, question2 in itertools.product(firsts, seconds):
            key = frozenset((question1, question2))
            if len(key) == 2 and key not in seen:
                seen.add(key)
                yield QqpPair(next(next_id), question1, question2, label)

    for pair in pairs:
        counts.given += 1
        seen.add(frozenset((pair.question1, pair.question2)))
        yield pair
        first, second = groups.group(pair.question1), groups.group(pair.question2)
        if pair.is_duplicate:
            if first == second:
                continue
            if second in groups.apart[first]:
                counts.contradicting += 1
                continue
            implied = list(new_pairs(groups.members[first], groups.members[second], 1))
            for other in groups.apart[first]:
                implied += new_pairs(groups.members[second], groups.members[other], 0)
            for other in groups.apart[second]:
                implied += new_pairs(groups.members[first], groups.members[other], 0)
            if len(groups.members[first]) < len(groups.members[second]):
                first, second = second, first
            groups.merge(first, second)
        else:
            if first == second:
                counts.contradicting += 1
                continue
            if second in groups.apart[first]:
                continue
            implied = list(new_pairs(groups.members[first], groups.members[second], 0))
            groups.apart[first].add(second)
            groups.apart[second].add(first)
        counts.implied_duplicates += sum(implied_pair.is_duplicate for implied_pair in implied)
        counts.implied_non_duplicates += sum(not implied_pair.is_duplicate
                                             for implied_pair in implied)
        yield from implied

"""Pairs implied by transitivity of "is a duplicate of"."""

from components.implied_pairs import ImpliedPairCounts, with_implied_pairs
from components.qqp_records import QqpPair


def _pairs(*triples: tuple[str, str, int]) -> list[QqpPair]:
    return [QqpPair(index + 1, first, second, label)
            for index, (first, second, label) in enumerate(triples)]


def _as_sets(pairs: list[QqpPair]) -> list[tuple[frozenset[str], int]]:
    return [(frozenset((pair.question1, pair.question2)), pair.is_duplicate) for pair in pairs]


def test_duplicates_and_non_duplicates_are_implied_where_they_arise():
    given = _pairs(("a", "b", 1), ("c", "d", 0), ("b", "c", 1), ("a", "e", 0))
    counts = ImpliedPairCounts()
    output = list(with_implied_pairs(given, counts))
    assert output[:3] == given[:3] and output[6] == given[3]
    # a~b and b~c: a~c; with c!~d: a!~d and b!~d
    assert set(_as_sets(output[3:6])) == {(frozenset("ac"), 1), (frozenset("ad"), 0),
                                          (frozenset("bd"), 0)}
    # a!~e, with a~b~c: b!~e and c!~e
    assert set(_as_sets(output[7:])) == {(frozenset("be"), 0), (frozenset("ce"), 0)}
    assert sorted(pair.id for pair in output if pair.id < 0) == [-5, -4, -3, -2, -1]
    assert counts == ImpliedPairCounts(given=4, implied_duplicates=1,
                                       implied_non_duplicates=4, contradicting=0)


def test_no_pair_is_implied_twice_or_when_it_was_given():
    given = _pairs(("a", "b", 1), ("b", "c", 1), ("c", "d", 1), ("d", "a", 1), ("e", "a", 1))
    counts = ImpliedPairCounts()
    output = list(with_implied_pairs(given, counts))
    implied = _as_sets([pair for pair in output if pair.id < 0])
    assert len(implied) == len(set(implied))
    assert set(implied) == {(frozenset(pair), 1) for pair in ("ac", "ad", "bd", "be", "ce", "de")}
    assert counts.implied_duplicates == 6 and counts.contradicting == 0


def test_contradicting_pairs_are_kept_as_given_and_counted():
    given = _pairs(("a", "b", 1), ("b", "c", 1), ("a", "c", 0), ("d", "e", 0), ("e", "f", 1),
                   ("d", "f", 1))
    counts = ImpliedPairCounts()
    output = list(with_implied_pairs(given, counts))
    assert [pair for pair in output if pair.id > 0] == given
    assert counts.contradicting == 2  # a!~c although a~b~c; d~f although d!~e~f
    assert counts.implied_duplicates == 1  # a~c, implied before the contradicting pair came
    assert counts.implied_non_duplicates == 1  # d!~f, implied by d!~e and e~f

"""Iterative k-core filtering (docs/PROTOCOL.md): repeat until every user and item has enough interactions.

A single pass is not a k-core: dropping a sparse item can push a user below k again. We loop to a fixed
point and assert the property, recording the counts after every round for stats.json.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from faerec.errors import FaerecError


@dataclass(frozen=True)
class FilterRound:
    round: int
    users: int
    items: int
    interactions: int


def iterative_kcore(frame: pl.DataFrame, min_user: int, min_item: int, user: str = "user_id",
                    item: str = "item_id") -> tuple[pl.DataFrame, list[FilterRound]]:
    """Keep the largest sub-log where each user has >= min_user and each item >= min_item interactions.

    Returns the filtered frame (row order preserved) and the counts after each round (round 0 = input).
    """
    if min_user < 1 or min_item < 1:
        raise FaerecError(f"k-core thresholds must be >= 1, got users {min_user}, items {min_item}")
    rounds = [_counts(frame, 0, user, item)]
    while True:
        kept = frame.filter(
            (pl.len().over(user) >= min_user) & (pl.len().over(item) >= min_item)
        )
        if kept.height == frame.height:
            break
        frame = kept
        rounds.append(_counts(frame, len(rounds), user, item))
        if frame.height == 0:
            break
    assert_kcore(frame, min_user, min_item, user, item)
    return frame, rounds


def require_survivors(rounds: list[FilterRound], min_user: int, min_item: int) -> None:
    """A FaerecError when the k-core removed every interaction: there is no dataset to write.

    ``rounds`` is what iterative_kcore returned (round 0 = the input). A k-core that leaves users of whom none
    is evaluable is not an error here (the trainer reports it).
    """
    last = rounds[-1]
    if last.interactions:
        return
    first = rounds[0]
    passes = len(rounds) - 1
    raise FaerecError(
        f"k-core with --min-user-interactions {min_user} --min-item-interactions {min_item} left "
        f"{last.users:,} users and {last.items:,} items of {first.users:,} users / {first.items:,} items "
        f"({passes} round{'s' if passes != 1 else ''}); lower the thresholds"
    )


def assert_kcore(frame: pl.DataFrame, min_user: int, min_item: int, user: str = "user_id",
                 item: str = "item_id") -> None:
    if frame.height == 0:
        return
    low_user = frame.group_by(user).len()["len"].min()
    low_item = frame.group_by(item).len()["len"].min()
    if low_user < min_user or low_item < min_item:  # a bug, never a user error
        raise AssertionError(f"k-core violated: min user count {low_user}, min item count {low_item}")


def _counts(frame: pl.DataFrame, number: int, user: str, item: str) -> FilterRound:
    return FilterRound(number, frame[user].n_unique(), frame[item].n_unique(), frame.height)

"""Content security (msgSecCheck v2, mediaCheckAsync v2): the verdict rules tests set
through the control API, and the result/detail shapes WeChat answers with.

Verdicts are decided by rules only: a risky entry beats a review entry, and anything that
matches neither passes with label 100.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PASS_LABEL = 100
# Labels the docs list (reference §9 for text, §10 for media).
TEXT_LABELS = (100, 10001, 20001, 20002, 20003, 20006, 20008, 20012, 20013, 21000)
MEDIA_LABELS = (100, 20001, 20002, 20006, 21000)
DEFAULT_LABEL = 21000  # 其他 (other)
SUGGESTIONS = ("risky", "review", "pass")
# What the content model reports; the docs show 90 in every example. [UNVERIFIED]
MODEL_PROB = 90
# `level` of keyword details: the doc example shows 90 for a risky keyword and 20 for a
# weaker one. [UNVERIFIED mapping]
KEYWORD_LEVEL = {"risky": 90, "review": 20}
DOWNLOAD_FAILED = -1008
SCENES = (1, 2, 3, 4)
PROFILE_SCENE = 1  # `signature` only counts in scene 1 (资料)


class RulesError(ValueError):
    pass


@dataclass(frozen=True)
class Rules:
    """risky/review entries and the label a match carries."""

    risky: tuple[str, ...] = ()
    review: tuple[str, ...] = ()
    label: int = DEFAULT_LABEL

    def public(self) -> dict[str, Any]:
        return {"risky": list(self.risky), "review": list(self.review), "label": self.label}


def parse_rules(raw: Any, allowed_labels: tuple[int, ...], what: str) -> Rules:
    if not isinstance(raw, Mapping):
        raise RulesError(f"{what} rules must be an object")
    unknown = sorted(set(raw) - {"risky", "review", "label"})
    if unknown:
        raise RulesError(f"unknown {what} rule field(s) {unknown}; use risky, review, label")
    label = raw.get("label", DEFAULT_LABEL)
    if isinstance(label, bool) or not isinstance(label, int) or label not in allowed_labels:
        raise RulesError(f"{what} label must be one of {list(allowed_labels)}")
    if label == PASS_LABEL:
        raise RulesError(f"{what} label 100 means normal; pick a risk label")
    return Rules(
        tuple(_entries(raw.get("risky"), what, "risky")),
        tuple(_entries(raw.get("review"), what, "review")),
        label,
    )


def _entries(value: Any, what: str, key: str) -> Iterable[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RulesError(f"{what}.{key} must be a list of non-empty strings")
    return value


def model_detail(suggest: str, label: int, errcode: int = 0) -> dict[str, Any]:
    return {
        "strategy": "content_model",
        "errcode": errcode,
        "suggest": suggest,
        "label": label,
        "prob": MODEL_PROB,
    }


def text_verdict(rules: Rules, texts: Iterable[str]) -> tuple[dict[str, Any], list[Any]]:
    """(result, detail) for msgSecCheck v2. Words match as case-insensitive substrings."""
    folded = [t.casefold() for t in texts]
    hits = [
        (suggest, word)
        for suggest, words in (("risky", rules.risky), ("review", rules.review))
        for word in words
        if any(word.casefold() in text for text in folded)
    ]
    suggest = hits[0][0] if hits else "pass"
    label = PASS_LABEL if suggest == "pass" else rules.label
    detail: list[Any] = [model_detail(suggest, label)]
    detail += [
        {
            "strategy": "keyword",
            "errcode": 0,
            "suggest": hit_suggest,
            "label": rules.label,
            "level": KEYWORD_LEVEL[hit_suggest],
            "keyword": word,
        }
        for hit_suggest, word in hits
    ]
    return {"suggest": suggest, "label": label}, detail


def media_verdict(rules: Rules, sha256: str, media_url: str) -> tuple[dict[str, Any], list[Any]]:
    """(result, detail) for mediaCheckAsync v2. An entry matches when it equals the fetched
    bytes' sha256 (hex) or occurs in media_url."""

    def matches(entry: str) -> bool:
        return entry.lower() == sha256 or entry in media_url

    if any(matches(e) for e in rules.risky):
        suggest = "risky"
    elif any(matches(e) for e in rules.review):
        suggest = "review"
    else:
        suggest = "pass"
    label = PASS_LABEL if suggest == "pass" else rules.label
    return {"suggest": suggest, "label": label}, [model_detail(suggest, label)]


def download_failed_verdict() -> tuple[dict[str, Any], list[Any]]:
    """What a failed download reports. [UNVERIFIED] The v1 push said isrisky 0 with
    status_code -1008; v2 is modelled the same way: errcode -1008 with a pass-looking
    result and a detail whose errcode (-1008) says it does not count."""
    return (
        {"suggest": "pass", "label": PASS_LABEL},
        [model_detail("pass", PASS_LABEL, errcode=DOWNLOAD_FAILED)],
    )

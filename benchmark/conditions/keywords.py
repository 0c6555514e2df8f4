"""Short text -> class, by keyword and synonym (the write-up's text-to-image front end).

Rules: a phrase matches as whole words, case-insensitively, also with a plural
ending (-s, -es). When several classes match, the longest matched phrase wins
("ankle boot" beats "boot"); two classes tied at that length is an error naming
both; no match is an error listing the known keywords.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from benchmark.errors import BenchError
from benchmark.registry import DATASETS


@dataclass(frozen=True)
class KeywordTable:
    dataset: str
    class_names: tuple[str, ...]
    phrases: dict[str, int]  # lower-case phrase -> class index

    def pattern(self, phrase: str) -> re.Pattern:
        words = r"[\s_]+".join(re.escape(w) for w in phrase.split())
        return re.compile(rf"(?<![\w-]){words}(?:e?s)?(?![\w-])", re.IGNORECASE)

    def match(self, text: str) -> int:
        """The class that `text` names."""
        hits = [(len(p), k, p) for p, k in self.phrases.items() if self.pattern(p).search(text)]
        if not hits:
            known = ", ".join(sorted(self.phrases))
            raise BenchError(f"no known {self.dataset} keyword in {text!r}; known keywords: {known}")
        longest = max(length for length, _, _ in hits)
        winners = {k: p for length, k, p in hits if length == longest}
        if len(winners) > 1:
            named = " and ".join(f"{self.class_names[k]} ({p!r})" for k, p in sorted(winners.items()))
            raise BenchError(f"{text!r} names {named} equally; say which one")
        return next(iter(winners))


@functools.cache
def keyword_table(dataset: str) -> KeywordTable:
    """The data set's keyword table, from its registration (data/datasets.py: `keywords`)."""
    classes = DATASETS[dataset].keywords
    if classes is None:
        tables = [name for name in DATASETS.names() if DATASETS[name].keywords is not None]
        raise BenchError(f"no keyword table for data set {dataset!r}; tables: {', '.join(tables)}")
    phrases: dict[str, int] = {}
    for index, (name, synonyms) in enumerate(classes.items()):
        for phrase in {name.lower(), *(s.lower() for s in synonyms)}:
            if "/" in phrase:
                continue  # "t-shirt/top" is a label, not something people write
            if phrases.setdefault(phrase, index) != index:
                raise ValueError(f"the keyword table of {dataset}: {phrase!r} names two classes")
        phrases = dict(sorted(phrases.items()))
    return KeywordTable(dataset, tuple(str(n) for n in classes), phrases)

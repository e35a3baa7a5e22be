"""The labelled data the offline model learns from, and its fixed train / held-out split."""
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.text import fold_accents

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "sentiment"
SPANISH_FILE = "es_tweets_evomsa_dev.jsonl"
ENGLISH_FILE = "en_amazon_snippets_vader.tsv"
ENGLISH_SENTENCES_FILE = "en_uci_sentences.jsonl"
SENTENCE_LABELS = {"pos": "positivo", "neg": "negativo"}
SPANISH_LABELS = {"P": "positivo", "N": "negativo", "NEU": "neutral", "NONE": "neutral"}
VADER_LEXICON_FILE = "en_vader_lexicon.txt"
SPANISH_AFINN_FILE = "es_afinn_multilang.json"
NEUTRAL_BAND = 0.5
HELD_OUT_PERCENT = 25
_PLAIN_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SPANISH_WORD = re.compile(r"[a-zñ]+")


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    language: str
    group: str  # examples of one group (a tweet, a review) fall on the same side of the split
    rating: float | None = None
    extra: bool = False  # from `load_extra`: learnt from, never a target

    @property
    def held_out(self) -> bool:
        return zlib.crc32(f"{self.language}:{self.group}".encode()) % 100 < HELD_OUT_PERCENT


def english_label(rating: float) -> str:
    if rating > NEUTRAL_BAND:
        return "positivo"
    if rating < -NEUTRAL_BAND:
        return "negativo"
    return "neutral"


def _json_lines(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def load_spanish(data_dir: Path = DATA_DIR) -> list[Example]:
    return [Example(row["text"], SPANISH_LABELS[row["label"]], "es", row["text"])
            for row in _json_lines(data_dir / SPANISH_FILE)]


def load_english(data_dir: Path = DATA_DIR) -> list[Example]:
    examples = []
    with open(data_dir / ENGLISH_FILE, encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t", 2)
            if len(parts) == 3:
                snippet_id, rating, text = parts
                review = snippet_id.split("_", 1)[0]
                examples.append(Example(text, english_label(float(rating)), "en", review, float(rating)))
    return examples


def load_english_sentences(data_dir: Path = DATA_DIR) -> list[Example]:
    """Review sentences labelled positive or negative (no neutral, no rating); one group each."""
    return [Example(row["text"], SENTENCE_LABELS[row["label"]], "en", "uci:" + row["id"], extra=True)
            for row in _json_lines(data_dir / ENGLISH_SENTENCES_FILE)]


def load_all(data_dir: Path = DATA_DIR) -> list[Example]:
    """The sets the targets are measured on: the Spanish tweets and the English review snippets."""
    return load_spanish(data_dir) + load_english(data_dir)


def load_extra(data_dir: Path = DATA_DIR) -> list[Example]:
    """More labelled text to learn from, split like the rest; its held-out part is a second check,
    not a target (`bench/sentiment_bench.py` prints it apart)."""
    return load_english_sentences(data_dir)


def split(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    """(train, held out): about a quarter of the tweets and of the reviews never seen in training."""
    return [e for e in examples if not e.held_out], [e for e in examples if e.held_out]


def load_vader_lexicon(data_dir: Path = DATA_DIR) -> dict[str, float]:
    """VADER's lexicon (token TAB mean valence from -4 to +4 TAB ...), only the entries that are one
    plain word for `services.sentiment.offline.tokens`; emoticons and the like are left out."""
    entries = {}
    with open(data_dir / VADER_LEXICON_FILE, encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and _PLAIN_WORD.fullmatch(parts[0]):
                entries[parts[0]] = float(parts[1])
    return entries


def load_spanish_afinn(data_dir: Path = DATA_DIR) -> dict[str, float]:
    """AFINN-165 put into Spanish (word or phrase: valence from -5 to +5), folded like the tokens and
    scaled to VADER's -4 to +4; phrases of more than two words are left out."""
    with open(data_dir / SPANISH_AFINN_FILE, encoding="utf-8") as handle:
        raw = json.load(handle)
    entries = {}
    for phrase, value in raw.items():
        folded = " ".join(fold_accents(phrase.casefold()).split())
        if 0 < len(folded.split()) <= 2 and all(_SPANISH_WORD.fullmatch(w) for w in folded.split()):
            entries.setdefault(folded, round(value * 0.8, 2))
    return entries


def load_public_lexicon(data_dir: Path = DATA_DIR) -> dict[str, float]:
    """The second lexicon of the model: VADER's English words, then AFINN's Spanish ones.
    (The Emoji Sentiment Ranking was tried as well and made cross-validation worse.)"""
    entries = load_vader_lexicon(data_dir)
    for word, value in load_spanish_afinn(data_dir).items():
        entries.setdefault(word, value)
    return entries

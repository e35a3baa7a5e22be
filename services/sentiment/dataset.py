"""The labelled data the offline model learns from, and its fixed train / held-out split."""
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "sentiment"
SPANISH_FILE = "es_tweets_evomsa_dev.jsonl"
ENGLISH_FILE = "en_amazon_snippets_vader.tsv"
SPANISH_LABELS = {"P": "positivo", "N": "negativo", "NEU": "neutral", "NONE": "neutral"}
NEUTRAL_BAND = 0.5
HELD_OUT_PERCENT = 25


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    language: str
    group: str  # examples of one group (a tweet, a review) fall on the same side of the split
    rating: float | None = None

    @property
    def held_out(self) -> bool:
        return zlib.crc32(f"{self.language}:{self.group}".encode()) % 100 < HELD_OUT_PERCENT


def english_label(rating: float) -> str:
    if rating > NEUTRAL_BAND:
        return "positivo"
    if rating < -NEUTRAL_BAND:
        return "negativo"
    return "neutral"


def load_spanish(data_dir: Path = DATA_DIR) -> list[Example]:
    examples = []
    with open(data_dir / SPANISH_FILE, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                examples.append(Example(row["text"], SPANISH_LABELS[row["label"]], "es", row["text"]))
    return examples


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


def load_all(data_dir: Path = DATA_DIR) -> list[Example]:
    return load_spanish(data_dir) + load_english(data_dir)


def split(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    """(train, held out): about a quarter of the tweets and of the reviews never seen in training."""
    return [e for e in examples if not e.held_out], [e for e in examples if e.held_out]

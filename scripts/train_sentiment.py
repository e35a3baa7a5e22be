"""Train the offline sentiment model from data/sentiment and write services/sentiment/model.json.gz.

    python scripts/train_sentiment.py [--data DIR] [--out FILE] [--all] [--cv]

Trains on the fixed training split of the target sets and of the extra English review sentences
(the held-out quarter of each stays unseen, so `bench/sentiment_bench.py` measures the model on data
it never learnt from) and prints the held-out figures. Besides its own lexicon the model reads a
second one (VADER's English words and AFINN's Spanish ones, see `dataset.load_public_lexicon`). `--all` also
learns from the held-out part, for a model whose figures can then no longer be checked. `--cv` first
prints 4-fold cross-validation on the training split (steadier than the small held-out Spanish set).
Pure Python, deterministic, no network; about 40 s on one core (`--cv` adds about 3 minutes).
"""
import argparse
import math
import random
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.sentiment.dataset import DATA_DIR, load_all, load_extra, load_public_lexicon, split  # noqa: E402
from services.sentiment.evaluation import evaluate  # noqa: E402
from services.sentiment.offline import LABELS, MODEL_PATH, Lexicon, OfflineModel, features, read_lexicon  # noqa: E402

BUCKETS = 1 << 18
EPOCHS = 6
LEARNING_RATE = 0.1
L2 = 1e-4
SEED = 5
SPANISH_WEIGHT = 3.0  # the tweets are few; weigh them up so English does not drown them
EXTRA_WEIGHT = 1.0  # the UCI review sentences (load_extra) count like the snippets
# words and word pairs, character 3- to 5-grams at half weight, lexicon features v2, language features;
# chosen by cross-validation on the training split (see services.sentiment.offline.features)
FEATURES = {"chars": [3, 5], "char_weight": 0.5, "lexicon": 2, "language": True}


def train(examples, buckets=BUCKETS, epochs=EPOCHS, rate=LEARNING_RATE, l2=L2, seed=SEED, config=None,
          spanish_weight=SPANISH_WEIGHT, extra_weight=EXTRA_WEIGHT, public_lexicon=True) -> OfflineModel:
    """Multinomial logistic regression by AdaGrad, classes weighed to balance each language."""
    entries = read_lexicon()
    lexicon = Lexicon(entries)
    second_entries = load_public_lexicon() if public_lexicon else None
    second = Lexicon(second_entries) if public_lexicon else None
    config = FEATURES if config is None else config
    rows = [(features(e.text, buckets, lexicon, config, second), LABELS.index(e.label), e.language,
             extra_weight if e.extra else 1.0) for e in examples]
    class_weight = {}
    for language in {row[2] for row in rows}:
        counts = [sum(w for _, y, lang, w in rows if lang == language and y == k) for k in range(3)]
        total = sum(counts)
        for k in range(3):
            if counts[k]:
                class_weight[(language, k)] = total / (3 * counts[k]) * (spanish_weight if language == "es" else 1.0)
    weights: dict[int, list[float]] = {}
    squares: dict[int, list[float]] = {}
    bias, bias_squares = [0.0] * 3, [1e-8] * 3
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    for _ in range(epochs):
        for i in order:
            x, y, language, row_weight = rows[i]
            scores = list(bias)
            for j, v in x.items():
                w = weights.get(j)
                if w:
                    for k in range(3):
                        scores[k] += w[k] * v
            top = max(scores)
            exps = [math.exp(s - top) for s in scores]
            total = sum(exps)
            weight = class_weight[(language, y)] * row_weight
            grad = [weight * (exps[k] / total - (1.0 if k == y else 0.0)) for k in range(3)]
            for k in range(3):
                bias_squares[k] += grad[k] ** 2
                bias[k] -= rate * grad[k] / math.sqrt(bias_squares[k])
            for j, v in x.items():
                w = weights.setdefault(j, [0.0, 0.0, 0.0])
                s = squares.setdefault(j, [1e-8, 1e-8, 1e-8])
                for k in range(3):
                    g = grad[k] * v + l2 * w[k]
                    s[k] += g * g
                    w[k] -= rate * g / math.sqrt(s[k])
        random.Random(seed + _).shuffle(order)
    return OfflineModel(buckets, weights, bias, entries, config=config, second_lexicon=second_entries)


def cross_validate(training, folds: int = 4, salt: str = "cv", **options) -> dict:
    """Mean held-out figures over `folds` group-wise folds of the training split; extra examples
    (`load_extra`) are always learnt from, never measured."""
    totals: dict = {}
    for fold in range(folds):
        def held(e):
            return not e.extra and zlib.crc32(f"{salt}:{e.language}:{e.group}".encode()) % folds == fold
        report = evaluate(train([e for e in training if not held(e)], **options), [e for e in training if held(e)])
        for language, figures in report.items():
            for name in ("macro_f1_3", "macro_f1_2"):
                totals.setdefault(language, {}).setdefault(name, []).append(figures[name])
    return {language: {name: sum(v) / len(v) for name, v in names.items()} for language, names in totals.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument("--all", action="store_true", help="aprende también de la parte reservada")
    parser.add_argument("--cv", action="store_true", help="antes, validación cruzada en 4 partes del entrenamiento")
    args = parser.parse_args(argv)
    examples = load_all(args.data)
    training, held_out = split(examples)
    extra = load_extra(args.data)
    extra_training, extra_held_out = split(extra)
    training += extra_training
    if args.cv:
        for language, figures in cross_validate(training).items():
            print(f"{language} validación cruzada (4 partes): macro-F1 3 clases {figures['macro_f1_3']:.3f}, "
                  f"positivo/negativo {figures['macro_f1_2']:.3f}")
    started = time.perf_counter()
    learnt = examples + extra if args.all else training
    model = train(learnt)
    model.meta = {"trained_on": "all" if args.all else "train split", "examples": len(learnt),
                  "buckets": BUCKETS, "epochs": EPOCHS, "features": FEATURES,
                  "data": sorted(p.name for p in args.data.glob("*_*.*"))}
    model.save(args.out)
    print(f"modelo escrito en {args.out} ({args.out.stat().st_size // 1024} KiB, "
          f"{time.perf_counter() - started:.0f} s)")
    seen = "" if not args.all else " (visto en el entrenamiento)"
    for language, figures in evaluate(model, held_out).items():
        print(f"{language} reservado n={figures['n']}: macro-F1 3 clases {figures['macro_f1_3']:.3f}, "
              f"positivo/negativo {figures['macro_f1_2']:.3f}" + seen)
    for language, figures in evaluate(model, extra_held_out).items():
        print(f"{language} otras frases reservadas n={figures['n']}: positivo/negativo {figures['macro_f1_2']:.3f}" + seen)
    return 0


if __name__ == "__main__":
    sys.exit(main())

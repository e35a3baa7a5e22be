"""Offline sentiment model on the held-out quarter of data/sentiment: quality, speed, memory.

    .venv/bin/python bench/sentiment_bench.py

Spanish tweets: macro-F1 over positivo / negativo / neutral (P, N, NEU+NONE). English review
snippets: macro-F1 positive vs negative on ratings beyond ±0.5 (and the 3-class figures beside it).
The model never saw these rows (scripts/train_sentiment.py trains on the rest, plus three quarters of
the UCI review sentences in data/sentiment/en_uci_sentences.jsonl). As a second check, not a target,
it also prints positive vs negative on the held-out quarter of those sentences (other sites, other
wording). Prints the figures, each target's pass/fail, and exits 1 when one fails.
"""
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.sentiment import SentimentClassifier, offline_model  # noqa: E402
from services.sentiment.dataset import load_all, load_extra, split  # noqa: E402
from services.sentiment.evaluation import evaluate  # noqa: E402

MS_TARGET, MB_TARGET = 2.0, 300


def main() -> int:
    started = time.perf_counter()
    model = offline_model()
    load_s = time.perf_counter() - started
    _, held_out = split(load_all())
    report = evaluate(model, held_out)
    extra = evaluate(model, split(load_extra())[1])
    classifier = SentimentClassifier("local", cache_size=0)
    texts = [e.text for e in held_out]
    started = time.perf_counter()
    for text in texts:
        classifier.classify(text)
    ms = (time.perf_counter() - started) * 1000 / len(texts)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ok = True
    print(f"modelo: {model.meta.get('trained_on')} ({model.meta.get('examples')} ejemplos), carga {load_s:.2f} s")
    for language, f in report.items():
        name = {"es": "español (tuits)", "en": "inglés (reseñas)"}[language]
        kind = "3 clases" if language == "es" else "positivo/negativo"
        ok &= f["passed"]
        print(f"{name}: n={f['n']}  3 clases macro-F1 {f['macro_f1_3']:.3f} exactitud {f['accuracy_3']:.3f}  |  "
              f"positivo/negativo (n={f['n_polar']}) macro-F1 {f['macro_f1_2']:.3f} exactitud {f['accuracy_2']:.3f}")
        print(f"  objetivo {kind} macro-F1 >= {f['target']:.2f}: {f['target_figure']:.3f} "
              f"{'CUMPLE' if f['passed'] else 'NO CUMPLE'}")
    for language, f in extra.items():
        print(f"  comprobación aparte, frases de reseñas UCI reservadas (n={f['n_polar']}): positivo/negativo "
              f"macro-F1 {f['macro_f1_2']:.3f} (no es objetivo)")
    print(f"velocidad: {ms:.3f} ms por mensaje (objetivo < {MS_TARGET} ms): {'CUMPLE' if ms < MS_TARGET else 'NO CUMPLE'}")
    print(f"memoria: pico RSS {peak_mb:.0f} MB (objetivo < {MB_TARGET} MB): {'CUMPLE' if peak_mb < MB_TARGET else 'NO CUMPLE'}")
    ok &= ms < MS_TARGET and peak_mb < MB_TARGET
    out = Path(__file__).resolve().parent / "results" / "sentiment.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"languages": report, "extra_sentences": extra, "ms_per_message": ms, "peak_rss_mb": peak_mb,
                               "model_load_s": load_s}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

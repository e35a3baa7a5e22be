"""Run every benchmark in bench/ (each bench/*_bench.py), one after the other.

    .venv/bin/python bench/run_all.py [--only webhook] [-- extra arguments for every script]

Each script prints its own table and writes bench/results/<name>.json. Exit codes of a script:
0 targets met, 1 a target missed, 2 bad arguments, 3 wrong results (a 200 without its stored row,
or errors), anything else a crash. run_all exits with the highest code it saw.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
MEANING = {0: "targets met", 1: "target missed", 2: "bad arguments", 3: "WRONG RESULTS"}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="bench name (webhook for webhook_bench.py)")
    args = parser.parse_args(argv)
    scripts = sorted(BENCH_DIR.glob("*_bench.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removesuffix("_bench") in args.only]
    if not scripts:
        parser.error("no bench script matches")
    outcomes = []
    for script in scripts:
        print(f"=== {script.name} {' '.join(extra)}".rstrip(), flush=True)
        started = time.time()
        code = subprocess.call([sys.executable, str(script), *extra], cwd=BENCH_DIR.parent)
        outcomes.append((script.name, code, time.time() - started))
        print(flush=True)
    print("=== summary")
    for name, code, seconds in outcomes:
        print(f"{name:<24} exit {code} ({MEANING.get(code, 'crashed')}) in {seconds:.0f} s")
    return max(code for _, code, _ in outcomes)


if __name__ == "__main__":
    sys.exit(main())

"""The production web command, as the Dockerfile's CMD runs it, for what must start it the same way elsewhere.

    .venv/bin/python scripts/web_command.py [--bind 127.0.0.1:8000]     (prints it)

The tests and benches start gunicorn with exactly these worker settings (only the address changes), and
scripts/check_compose.py checks that they keep live updates off the request threads.
"""
import json
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASYNC_WORKERS = ("gevent",)


def gunicorn_command(dockerfile: Path = ROOT / "Dockerfile") -> list[str]:
    """The gunicorn argv of the Dockerfile's CMD (the part after `exec`)."""
    match = re.search(r"^CMD\s+(\[.*\])\s*$", dockerfile.read_text(encoding="utf-8"), re.MULTILINE)
    if not match:
        raise ValueError(f"{dockerfile}: no CMD in exec form")
    shell = json.loads(match.group(1))[-1]
    for part in shell.split("&&"):
        words = shlex.split(part)
        if words and words[0] == "exec":
            words = words[1:]
        if words and words[0] == "gunicorn":
            return words
    raise ValueError(f"{dockerfile}: CMD does not run gunicorn")


def option(argv: list[str], *names: str) -> str | None:
    """The value of a gunicorn option (`-k gevent`, `--worker-class=gevent`), or None."""
    for index, word in enumerate(argv):
        for name in names:
            if word == name and index + 1 < len(argv):
                return argv[index + 1]
            if name.startswith("--") and word.startswith(name + "="):
                return word.split("=", 1)[1]
    return None


def bound_to(argv: list[str], address: str) -> list[str]:
    """`argv` listening on `address` instead of the image's port."""
    result, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word in ("-b", "--bind"):
            skip = True
        elif not word.startswith("--bind="):
            result.append(word)
    return [result[0], "-b", address, *result[1:]]


if __name__ == "__main__":
    address = sys.argv[sys.argv.index("--bind") + 1] if "--bind" in sys.argv else None
    command = gunicorn_command()
    print(shlex.join(bound_to(command, address) if address else command))

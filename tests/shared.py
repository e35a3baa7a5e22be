"""Where the shared corpus and labelled data live: `../shared` beside the repository, or SHARED_DIR."""
import os
from pathlib import Path


def shared_dir() -> Path:
    candidates = [os.environ.get("SHARED_DIR"), Path(__file__).resolve().parents[2] / "shared", "/work/shared"]
    for candidate in filter(None, candidates):
        if (Path(candidate) / "corpus").is_dir():
            return Path(candidate)
    raise RuntimeError("no encuentro ../shared/corpus; defina SHARED_DIR con la carpeta shared")


SHARED = shared_dir()
CORPUS = SHARED / "corpus"

"""The one place that normalises text for matching and counting."""
import re
import unicodedata

_NOT_WORD = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACES = re.compile(r"\s+")


def fold_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalize(text: str | None) -> str:
    """Lower case, accents and punctuation removed, spaces collapsed: '¡Menú,  Principal!' → 'menu principal'."""
    if not text:
        return ""
    folded = fold_accents(text.casefold())
    return _SPACES.sub(" ", _NOT_WORD.sub(" ", folded)).strip()

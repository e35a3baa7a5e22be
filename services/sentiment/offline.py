"""The offline sentiment model: hashed word and character n-grams, one linear layer, softmax.

Pure Python, so it runs wherever the app runs. `scripts/train_sentiment.py` writes the model
file; `OfflineModel.load()` reads it once. The model file carries its lexicons: the project's own
and, when trained with it, a second one (VADER's English words and AFINN's Spanish ones, see
`services.sentiment.dataset.load_public_lexicon` and data/sentiment/SOURCE.md). Features are built here and only here, so training
and prediction cannot drift apart.
"""
import functools
import gzip
import html
import json
import math
import re
import zlib
from pathlib import Path

from services.text import fold_accents

LABELS = ("negativo", "neutral", "positivo")
MODEL_PATH = Path(__file__).resolve().parent / "model.json.gz"
LEXICON_PATH = Path(__file__).resolve().parent / "lexicon.txt"
LEXICON_FEATURES = 3
LEXICON_SLOTS = 8  # room for the lexicon features of each version
_SPANISH_MARKS = frozenset("ñÑáéíóúÁÉÍÓÚ¿¡")
_SPANISH_WORDS = frozenset("de la que el en y los se del las un por con no una su para es al lo como mas pero sus le ya o "
                           "este si porque esta entre cuando muy sin sobre tambien me hasta hay donde quien desde todo "
                           "nos durante todos uno les ni contra otros ese eso ante ellos e esto mi antes algunos que unos "
                           "yo otro otras otra el tanto esa estos mucho quienes nada muchos cual poco ella estar estas "
                           "algunas algo nosotros mis tu te ti tus ellas vosotros os mio mia tuyo tuya fue ser son soy "
                           "estoy estan hace hoy bien asi va voy".split())
_ENGLISH_WORDS = frozenset("the be to of and a in that have i it for not on with he as you do at this but his by from "
                           "they we say her she or an will my one all would there their what so up out if about who get "
                           "which go me when make can like time just him know take people into year your good some could "
                           "them see other than then now look only come its over think also back after use two how our "
                           "work first well way even new want because any these give day most us is are was were has had "
                           "does did very".split())
UNSURE = 0.6
REQUEST_OPENERS = frozenset("quiero quisiera necesito necesitamos como cuando donde cual cuales cuanto cuanta cuantos que "
                            "hay tienen tiene puedo pueden podria podrian info informacion favor where what when how "
                            "can could do does is are need want which who".split())

_TOKEN = re.compile(r"<3|[a-zñ0-9]+(?:'[a-z]+)?|[!?]|[\U0001F300-\U0001FAFF\u2600-\u27BF]|[:;=][-']?[()dp]", re.UNICODE)
_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_REPEAT = re.compile(r"(.)\1{2,}")
NEGATORS = frozenset("no ni nunca jamas tampoco sin nada nadie not no never nothing without cannot cant dont doesnt didnt "
                     "isnt wasnt wont wouldnt shouldnt couldnt aint n't".split())
_NEGATION_SPAN = 3
_CLAUSE_END = frozenset("! ? pero but aunque although".split())
_CONTRAST = frozenset("pero but aunque although however".split())
_INTENSIFIERS = frozenset("muy mucho muchisimo tan super re demasiado bastante very so really too extremely totally".split())


def read_lexicon(path: Path = LEXICON_PATH) -> dict[str, float]:
    """`word weight` lines (a trailing `*` makes a prefix), folded like the tokens."""
    lexicon = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            word, weight = line.rsplit(None, 1)
            lexicon[fold_accents(word.casefold())] = float(weight)
    return lexicon


class Lexicon:
    """Polarity of a token: exact entries first, then the longest matching `prefix*`."""

    def __init__(self, entries: dict[str, float]):
        self.entries = entries
        self.exact = {w: v for w, v in entries.items() if not w.endswith("*") and " " not in w}
        self.pairs = {tuple(w.split()): v for w, v in entries.items() if " " in w}
        self.prefixes = {w[:-1]: v for w, v in entries.items() if w.endswith("*")}
        self.longest = max((len(p) for p in self.prefixes), default=0)

    def polarity(self, token: str) -> float:
        if token in self.exact:
            return self.exact[token]
        for size in range(min(len(token), self.longest), 2, -1):
            weight = self.prefixes.get(token[:size])
            if weight is not None:
                return weight
        return 0.0

    def scores(self, words: list[str]) -> tuple[float, float]:
        """(positive, negative) sums; negation flips a word, an intensifier before it weighs it up.
        Two-word entries ("no sirve", "te amo") count once, in place of their words."""
        positive = negative = 0.0
        boost = 1.0
        bare_words = [w.lstrip("~") for w in words]
        skip = False
        for index, word in enumerate(words):
            if skip:
                skip = False
                continue
            negated = word.startswith("~")
            bare = bare_words[index]
            if bare in _INTENSIFIERS:
                boost = 1.5
                continue
            pair = self.pairs.get(tuple(bare_words[index:index + 2]))
            if pair is not None:
                skip, negated = True, False
            weight = (pair if pair is not None else self.polarity(bare)) * boost * (-0.7 if negated else 1.0)
            boost = 1.0
            if weight > 0:
                positive += weight
            else:
                negative -= weight
        return positive, negative


def tokens(text: str) -> list[str]:
    """Lower-cased, accent-folded tokens; words after a negator (up to 3, or a clause end) get a `~` mark."""
    folded = fold_accents(html.unescape(text).casefold()).replace("n't", " n't").replace("’", "'")
    folded = _REPEAT.sub(r"\1\1", _MENTION.sub(" @user ", _URL.sub(" http ", folded)))
    result, negated = [], 0
    for token in _TOKEN.findall(folded):
        if token in _CLAUSE_END:
            negated = 0
            result.append(token)
        elif token in NEGATORS:
            negated = _NEGATION_SPAN
            result.append(token)
        elif negated:
            negated -= 1
            result.append("~" + token)
        else:
            result.append(token)
    return result


FEATURES_V1 = {"chars": [], "lexicon": 1}


def _lexicon_features(words: list[str], lexicon: Lexicon, version: int) -> list[float]:
    positive, negative = lexicon.scores(words)
    result = [math.log1p(positive), math.log1p(negative), math.tanh((positive - negative) / 3)]
    if version >= 2:
        # the clause after the last "pero" / "but" usually carries the verdict (VADER weighs it up)
        cut = max((i for i, w in enumerate(words) if w in _CONTRAST), default=-1)
        late_pos, late_neg = lexicon.scores(words[cut + 1:]) if cut >= 0 else (positive, negative)
        shouts = sum(1 for w in words if w == "!")
        # exclamations amplify the feeling there is (VADER); alone they say nothing
        result += [math.tanh((late_pos - late_neg) / 3), result[2] * min(shouts, 3) / 3, 1.0 if "?" in words else 0.0,
                   1.0 if positive == negative == 0.0 else 0.0]
    return result


def features(text: str, buckets: int, lexicon: Lexicon | None = None, config: dict | None = None,
             second: Lexicon | None = None) -> dict[int, float]:
    """Hashed counts of words and word pairs scaled to unit length; with `config["chars"]` = [n, m],
    also character n-grams of each word (n to m long, a block of its own length `char_weight`);
    then the lexicon features (positive, negative, balance; version 2 adds the balance after the
    last "pero"/"but", the balance amplified by exclamations, a question mark, no word of feeling) in the slots after the buckets;
    with a `second` lexicon, the same features from it in the next LEXICON_SLOTS slots."""
    config = config or FEATURES_V1
    words = tokens(text)
    grams = ["w:" + w for w in words]
    grams += ["b:" + a + " " + b for a, b in zip(words, words[1:])]
    counts: dict[int, float] = {}
    for gram in grams:
        index = zlib.crc32(gram.encode()) % buckets
        counts[index] = counts.get(index, 0.0) + 1.0
    norm = math.sqrt(sum(v * v for v in counts.values())) or 1.0
    result = {index: value / norm for index, value in counts.items()}
    if config.get("chars"):
        low, high = config["chars"]
        chars: dict[int, float] = {}
        for word in words:
            for index in _char_grams(word, low, high, buckets):
                chars[index] = chars.get(index, 0.0) + 1.0
        scale = config.get("char_weight", 1.0) / (math.sqrt(sum(v * v for v in chars.values())) or 1.0)
        for index, value in chars.items():
            result[index] = result.get(index, 0.0) + value * scale
    if lexicon is not None:
        version = config.get("lexicon", 1)
        values = _lexicon_features(words, lexicon, version)
        slots = LEXICON_SLOTS
        if second is not None:
            # the same readings from the second lexicon (VADER's), in the slots after the first
            values += [0.0] * (LEXICON_SLOTS - len(values)) + _lexicon_features(words, second, version)
            slots = 2 * LEXICON_SLOTS
        for offset, value in enumerate(values):
            result[buckets + offset] = value
        if config.get("language"):
            # a bias and a lexicon reading of their own for each language: tweets and reviews differ
            spanish = looks_spanish(text, words)
            result[buckets + slots] = 1.0 if spanish else 0.0
            result[buckets + slots + 1] = 0.0 if spanish else 1.0
            base = buckets + slots + 2 + (0 if spanish else slots)
            for offset, value in enumerate(values):
                result[base + offset] = value
    return result


@functools.lru_cache(maxsize=1 << 16)
def _char_grams(word: str, low: int, high: int, buckets: int) -> tuple[int, ...]:
    """Hashed character n-grams of one word between `<` `>` (cached: words come back all the time)."""
    padded = "<" + word + ">"
    return tuple(zlib.crc32(("c:" + padded[start:start + size]).encode()) % buckets
                 for size in range(low, min(high, len(padded)) + 1) for start in range(len(padded) - size + 1))


def looks_spanish(text: str, words: list[str]) -> bool:
    """Spanish or English, by marks (ñ, accents, ¿ ¡) and common words; ties go to Spanish."""
    if any(c in _SPANISH_MARKS for c in text):
        return True
    spanish = sum(1 for w in words if w.lstrip("~") in _SPANISH_WORDS)
    english = sum(1 for w in words if w.lstrip("~") in _ENGLISH_WORDS)
    return spanish >= english


def is_plain_request(text: str, lexicon: Lexicon) -> bool:
    """A question or request ("¿dónde está mi pedido?", "quiero saber el horario") without a word of feeling."""
    words = [w for w in tokens(text) if w != "@user"]
    if not words or lexicon.scores(words) != (0.0, 0.0):
        return False
    return words[0].lstrip("~") in REQUEST_OPENERS or words[-1] == "?"


class OfflineModel:
    """Multinomial logistic regression over hashed features."""

    def __init__(self, buckets: int, weights: dict[int, list[float]], bias: list[float],
                 lexicon: dict[str, float] | None = None, meta: dict | None = None, config: dict | None = None,
                 second_lexicon: dict[str, float] | None = None):
        self.buckets, self.weights, self.bias, self.meta = buckets, weights, bias, meta or {}
        self.config = config or FEATURES_V1
        self.lexicon = Lexicon(lexicon or {})
        self.second = Lexicon(second_lexicon) if second_lexicon else None

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> "OfflineModel":
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("labels") != list(LABELS):
            raise ValueError(f"el modelo {path} no tiene las etiquetas {LABELS}")
        weights = {int(k): v for k, v in data["weights"].items()}
        return cls(data["buckets"], weights, data["bias"], data.get("lexicon"), data.get("meta"),
                   data.get("features", FEATURES_V1), data.get("second_lexicon"))

    def save(self, path: Path) -> None:
        data = {"labels": list(LABELS), "buckets": self.buckets, "bias": [round(b, 5) for b in self.bias],
                "weights": {str(k): [round(x, 5) for x in v] for k, v in sorted(self.weights.items())
                            if any(abs(x) >= 1e-5 for x in v)},
                "lexicon": self.lexicon.entries, "meta": self.meta, "features": self.config}
        if self.second is not None:
            data["second_lexicon"] = self.second.entries
        body = json.dumps(data, separators=(",", ":")).encode()
        # no name, mtime 0: the same data always gives the same bytes
        with open(path, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as handle:
            handle.write(body)

    def probabilities(self, text: str) -> list[float]:
        scores = list(self.bias)
        zero = (0.0, 0.0, 0.0)
        for index, value in features(text, self.buckets, self.lexicon, self.config, self.second).items():
            row = self.weights.get(index, zero)
            scores[0] += row[0] * value
            scores[1] += row[1] * value
            scores[2] += row[2] * value
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return [e / total for e in exps]

    def classify(self, text: str) -> tuple[str, float]:
        """(label, probability of that label). An unsure guess on a plain request without a word of
        feeling ("quiero saber el horario") is neutral: asking is not complaining."""
        probs = self.probabilities(text)
        best = max(range(len(LABELS)), key=probs.__getitem__)
        if LABELS[best] != "neutral" and probs[best] < UNSURE and is_plain_request(text, self.lexicon):
            return "neutral", max(probs[1], 1.0 - probs[best])
        return LABELS[best], probs[best]

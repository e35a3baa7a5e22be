"""Frequent words: accents folded, Spanish and English stop words removed."""
import re
from collections import Counter
from collections.abc import Iterable

from services.text import normalize

STOP_WORDS = frozenset("""
a al algo algun alguna algunas alguno algunos ante antes aqui asi aun aunque bien cada como con contra cual
cuales cuando cuanto de del desde donde dos el ella ellas ello ellos en entre era eran es esa esas ese eso esos
esta estaba estan estar estas este esto estos estoy fue fueron ha habia han hasta hay la las le les lo los mas
me mi mis mucho muy nada ni no nos nosotros o os otra otro para pero poco por porque que quien se sea ser si
sin sobre solo son su sus tambien te tengo tiene tienen todo todos tu tus un una uno unos usted ustedes va vamos
y ya yo soy eres somos fui hace hacer puede puedo quiero quisiera gracias hola buenas buenos dias tardes noches
ok vale pues esto alla
about after again all am an and any are as at be because been before being but by can could did do does doing
down for from had has have having he her here hers him his how i if in into is it its just me more most my no
nor not now of off on once only or other our out over own same she should so some such than that the their them
then there these they this those through to too under until up very was we were what when where which while who
whom why will with would you your yours im dont hi hello thanks please yes
""".split())
WORD = re.compile(r"[a-z\u00f1]{3,}")


def frequent_words(texts: Iterable[str], limit: int = 30) -> list[tuple[str, int]]:
    counts = Counter()
    for text in texts:
        counts.update(word for word in WORD.findall(normalize(text)) if word not in STOP_WORDS)
    return counts.most_common(limit)

"""A bounded, thread-safe LRU of sentiment results, keyed by normalised text."""
import threading
import unicodedata
from collections import OrderedDict

from services.text import normalize


def cache_key(text: str) -> str:
    """The normalised text, plus its emoji (which `normalize` drops but which carry the feeling)."""
    return normalize(text) + "|" + "".join(c for c in text if unicodedata.category(c) == "So")


class LruCache:
    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
            return None

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

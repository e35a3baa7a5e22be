"""Dashboard figures, aggregated in SQL over the messages a viewer may see."""
from services.analytics.filters import Filters, FilterError, parse_filters
from services.analytics.queries import CHARTS

__all__ = ["CHARTS", "FilterError", "Filters", "parse_filters"]

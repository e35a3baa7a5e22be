"""The flow as a graph (steps and the arrows between them), and its layout for drawing."""
from dataclasses import dataclass

from models import Rule
from services.rules.editing import list_rules
from services.rules.validation import WILDCARD


@dataclass(frozen=True)
class StepNode:
    name: str
    rule_count: int
    missing: bool = False


@dataclass(frozen=True)
class FlowEdge:
    source: str
    target: str
    labels: tuple[str, ...]
    rule_ids: tuple[int, ...]
    avanzar: bool


@dataclass(frozen=True)
class FlowGraph:
    steps: list[StepNode]
    edges: list[FlowEdge]


def edge_label(input_text: str) -> str:
    return "cualquier otro (*)" if input_text.strip() == WILDCARD else input_text.strip()


def flow_graph() -> FlowGraph:
    """The steps and the arrows between them (step → siguiente_step, labelled with the inputs that take it)."""
    rules = list_rules()
    counts: dict[str, int] = {}
    grouped: dict[tuple[str, str], list[Rule]] = {}
    for rule in rules:
        counts[rule.step] = counts.get(rule.step, 0) + 1
        if rule.siguiente_step:
            grouped.setdefault((rule.step, rule.siguiente_step), []).append(rule)
    edges = [FlowEdge(source, target, tuple(edge_label(r.input_text) for r in group), tuple(r.id for r in group),
                      any(r.avanzar for r in group))
             for (source, target), group in grouped.items()]
    missing = sorted({edge.target for edge in edges} - set(counts))
    steps = [StepNode(name, count) for name, count in counts.items()] + [StepNode(name, 0, True) for name in missing]
    return FlowGraph(steps, edges)



NODE_WIDTH, NODE_HEIGHT = 180, 52
GAP_X, GAP_Y, MARGIN = 170, 44, 24
LOOP_ROOM = 56
LANE = 22
LEFT = MARGIN + 76  # room for the gutters of arrows routed around the boxes
MAX_LABEL = 30


@dataclass(frozen=True)
class Exit:
    label: str
    target: str
    target_anchor: str
    avanzar: bool


@dataclass(frozen=True)
class StepBox:
    name: str
    anchor: str
    x: int
    y: int
    rule_count: int
    missing: bool
    initial: bool
    exits: tuple[Exit, ...]

    @property
    def short_name(self) -> str:
        return shorten(self.name, 22)


@dataclass(frozen=True)
class Arrow:
    path: str
    label: str
    full_label: str
    label_x: int
    label_y: int
    avanzar: bool


@dataclass(frozen=True)
class FlowDrawing:
    width: int
    height: int
    node_width: int
    node_height: int
    boxes: list[StepBox]
    arrows: list[Arrow]


def shorten(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _levels(graph: FlowGraph, initial_step: str | None) -> dict[str, int]:
    """Column of each step: breadth-first from the initial step, then from every step not yet reached."""
    following: dict[str, list[str]] = {}
    for edge in graph.edges:
        following.setdefault(edge.source, []).append(edge.target)
    names = [step.name for step in graph.steps]
    targets = {edge.target for edge in graph.edges if edge.source != edge.target}
    roots = [initial_step] if initial_step in names else []
    roots += sorted(n for n in names if n not in targets) + sorted(names)
    level: dict[str, int] = {}
    for root in roots:
        if root in level:
            continue
        level[root] = 0
        queue = [root]
        while queue:
            current = queue.pop(0)
            for target in sorted(following.get(current, [])):
                if target not in level:
                    level[target] = level[current] + 1
                    queue.append(target)
    return level


def _next_column(start: tuple[int, int], end: tuple[int, int]) -> bool:
    return end[0] - start[0] == NODE_WIDTH + GAP_X


def _arrow(edge: FlowEdge, start: tuple[int, int], end: tuple[int, int], lane: int, track: int) -> Arrow:
    """Route one arrow: a loop over its box, a curve to the next column, or around the boxes via a lane below."""
    (sx, sy), (tx, ty) = start, end
    full = " · ".join(edge.labels)
    if edge.source == edge.target:
        left, right = sx + NODE_WIDTH // 3, sx + 2 * NODE_WIDTH // 3
        path = f"M{right},{sy} C{right + 24},{sy - 44} {left - 24},{sy - 44} {left},{sy}"
        return Arrow(path, shorten(full), full, sx + NODE_WIDTH // 2, sy - 38, edge.avanzar)
    if _next_column(start, end):
        x1, y1, x2, y2 = sx + NODE_WIDTH, sy + NODE_HEIGHT // 2, tx, ty + NODE_HEIGHT // 2
        bend = (x2 - x1) // 2
        path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
        return Arrow(path, shorten(full), full, (x1 + x2) // 2, (y1 + y2) // 2 - 8, edge.avanzar)
    # Anything else leaves by the source's right gutter, runs along its own lane under every box, and
    # comes up the target's left gutter, so it never crosses a box.
    out_x, in_x = sx + NODE_WIDTH + 14 + 6 * track, tx - 14 - 6 * track
    y1, y2 = sy + 3 * NODE_HEIGHT // 4, ty + 3 * NODE_HEIGHT // 4
    path = f"M{sx + NODE_WIDTH},{y1} L{out_x},{y1} L{out_x},{lane} L{in_x},{lane} L{in_x},{y2} L{tx},{y2}"
    return Arrow(path, shorten(full), full, (out_x + in_x) // 2, lane - 5, edge.avanzar)


def draw_flow(graph: FlowGraph, initial_step: str | None = None) -> FlowDrawing:
    """Place the steps in columns (left to right from the initial step) and route the arrows between them."""
    level = _levels(graph, initial_step)
    columns: dict[int, list[StepNode]] = {}
    for step in sorted(graph.steps, key=lambda s: (level[s.name], s.name != initial_step, s.name)):
        columns.setdefault(level[step.name], []).append(step)
    anchors = {step.name: f"paso-{index}" for index, step in enumerate(graph.steps, start=1)}
    places: dict[str, tuple[int, int]] = {}
    for column, steps in columns.items():
        for row, step in enumerate(steps):
            places[step.name] = (LEFT + column * (NODE_WIDTH + GAP_X),
                                 MARGIN + LOOP_ROOM + row * (NODE_HEIGHT + GAP_Y))
    bottom = max((y for _, y in places.values()), default=MARGIN) + NODE_HEIGHT
    exits: dict[str, list[Exit]] = {}
    for edge in graph.edges:
        exits.setdefault(edge.source, []).append(Exit(" · ".join(edge.labels), edge.target, anchors[edge.target],
                                                      edge.avanzar))
    boxes = [StepBox(step.name, anchors[step.name], *places[step.name], step.rule_count, step.missing,
                     step.name == initial_step, tuple(exits.get(step.name, ())))
             for column in sorted(columns) for step in columns[column]]
    arrows, track = [], 0
    for edge in graph.edges:
        start, end = places[edge.source], places[edge.target]
        arrows.append(_arrow(edge, start, end, bottom + LANE * (track + 1), track % 10))
        track += edge.source != edge.target and not _next_column(start, end)
    width = LEFT + len(columns) * (NODE_WIDTH + GAP_X) - GAP_X + LEFT
    return FlowDrawing(max(width, 320), bottom + LANE * (track + 1) + MARGIN, NODE_WIDTH, NODE_HEIGHT, boxes, arrows)

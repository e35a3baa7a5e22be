"""The bot's rules (DESIGN.md §4): validation, editing, ordering, the flow graph, and the `.xlsx` sheet."""
from services.rules.editing import (create_rule, delete_rule, get_rule, list_rules, move_rule, reorder_rules,
                                    rules_by_step, step_names, update_rule)
from services.rules.graph import FlowDrawing, FlowEdge, FlowGraph, StepNode, draw_flow, flow_graph
from services.rules.media import KINDS as MEDIA_KINDS
from services.rules.media import MediaError, Upload
from services.rules.sheet import ImportReport, SheetError, export_rules, import_rules
from services.rules.validation import (COLUMNS, MEDIA_TYPES, RuleError, known_handler_names, split_options,
                                       validate_rule)

__all__ = ["COLUMNS", "MEDIA_KINDS", "MEDIA_TYPES", "FlowDrawing", "FlowEdge", "FlowGraph", "ImportReport",
           "MediaError", "RuleError", "SheetError", "StepNode", "Upload", "create_rule", "delete_rule",
           "draw_flow", "export_rules", "flow_graph", "get_rule", "import_rules", "known_handler_names",
           "list_rules", "move_rule", "reorder_rules", "rules_by_step", "split_options", "step_names",
           "update_rule", "validate_rule"]

"""Before/after plans as a tree a person reads: nested HTML from the stored EXPLAIN JSON.

Each node shows its type, relation, index, estimated vs actual rows and time; a node of one
plan with no node of the same type, relation and index in the other is marked changed.
Rendered on the server with format_html, so every name from the plan is escaped.
"""

from collections import Counter
from dataclasses import dataclass, field

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from .formatting import count_text, ms_text

# Conditions shown under a node (EXPLAIN JSON keys), in psql's order.
CONDITION_KEYS = ("Index Cond", "Recheck Cond", "Hash Cond", "Join Filter", "Filter", "Sort Key")


@dataclass(frozen=True)
class PlanNode:
    node_type: str
    relation: str
    index: str
    estimated_rows: float | None
    actual_rows: float | None
    loops: int
    total_ms: float | None
    conditions: list[tuple[str, str]]
    children: list["PlanNode"] = field(default_factory=list)

    @property
    def signature(self) -> tuple[str, str, str]:
        return (self.node_type, self.relation, self.index)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


def plan_root(plan: object) -> dict | None:
    """The top plan node of EXPLAIN (FORMAT JSON) output as stored ([{"Plan": ...}] or so)."""
    if isinstance(plan, list):
        plan = plan[0] if plan else None
    if isinstance(plan, dict) and "Plan" in plan:
        plan = plan["Plan"]
    return plan if isinstance(plan, dict) and "Node Type" in plan else None


def plan_node(raw: dict) -> PlanNode:
    conditions = []
    for key in CONDITION_KEYS:
        if key in raw:
            value = raw[key]
            conditions.append(
                (key, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
            )
    return PlanNode(
        node_type=str(raw.get("Node Type", "?")),
        relation=str(raw.get("Relation Name") or ""),
        index=str(raw.get("Index Name") or ""),
        estimated_rows=_number(raw.get("Plan Rows")),
        actual_rows=_number(raw.get("Actual Rows")),
        loops=int(raw.get("Actual Loops") or 1),
        total_ms=_number(raw.get("Actual Total Time")),
        conditions=conditions,
        children=[plan_node(child) for child in raw.get("Plans") or [] if isinstance(child, dict)],
    )


@dataclass(frozen=True)
class PlanPair:
    before: SafeString
    after: SafeString
    changed: int  # nodes marked, both sides


def plan_tree_pair(before: object, after: object) -> PlanPair:
    """Both plans as trees, each node the other plan lacks marked as changed."""
    trees = [plan_node(root) if (root := plan_root(p)) else None for p in (before, after)]
    signatures = [Counter(n.signature for n in t.walk()) if t else Counter() for t in trees]
    html, changed = [], 0
    for tree, other in zip(trees, reversed(signatures), strict=True):
        if tree is None:
            html.append(mark_safe('<p class="dba-empty">Not recorded.</p>'))
            continue
        marked = {n.signature for n in tree.walk()} - set(other) if other else set()
        changed += sum(1 for n in tree.walk() if n.signature in marked)
        html.append(format_html('<ul class="dba-plan-tree">{}</ul>', _node_html(tree, marked)))
    return PlanPair(before=html[0], after=html[1], changed=changed)


def _node_html(node: PlanNode, marked: set) -> SafeString:
    facts = [f"est. {count_text(node.estimated_rows)} rows"]
    if node.actual_rows is not None:
        loops = f" x {node.loops} loops" if node.loops > 1 else ""
        facts.append(f"actual {count_text(node.actual_rows)} rows{loops}")
    if node.total_ms is not None:
        facts.append(ms_text(node.total_ms))
    target = format_html(
        "{}{}",
        format_html(' on <span class="dba-plan-rel">{}</span>', node.relation)
        if node.relation
        else "",
        format_html(' using <span class="dba-plan-idx">{}</span>', node.index)
        if node.index
        else "",
    )
    conditions = format_html_join(
        "", '<div class="dba-plan-cond">{}: <code>{}</code></div>', node.conditions
    )
    children = format_html_join("", "{}", ((_node_html(c, marked),) for c in node.children))
    return format_html(
        '<li class="{}"><div class="dba-plan-node"><strong>{}</strong>{}'
        '<span class="dba-plan-facts">{}</span>{}</div>{}{}</li>',
        "dba-plan-changed" if node.signature in marked else "",
        node.node_type,
        target,
        " · ".join(facts),
        mark_safe(' <span class="dba-plan-mark">changed</span>')
        if node.signature in marked
        else "",
        conditions,
        format_html("<ul>{}</ul>", children) if node.children else "",
    )


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) else None

"""Template filters for numbers as people read them: {% load dba_format %}, then
{{ value|ms }}, |seconds, |impact, |bytes, |count; {{ before|speedup:after }}; and a
recommendation's plans as trees: {% with trees=log|plan_trees %}."""

from django import template

from presentation import formatting
from presentation.plan_tree import PlanPair, plan_tree_pair

register = template.Library()

register.filter("ms", formatting.ms_text)
register.filter("seconds", formatting.seconds_text)
register.filter("impact", formatting.impact_text)
register.filter("bytes", formatting.bytes_text)
register.filter("count", formatting.count_text)
register.filter("speedup", formatting.speedup_text)


@register.filter
def plan_trees(log) -> PlanPair:
    """A recommendation's before/after plans as trees (presentation.plan_tree)."""
    return plan_tree_pair(log.plan_before, log.plan_after)

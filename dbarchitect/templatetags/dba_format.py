"""Template filters for numbers as people read them: {% load dba_format %}, then
{{ value|ms }}, |seconds, |impact, |bytes, |count; {{ before|speedup:after }}."""

from django import template

from dbarchitect import formatting

register = template.Library()

register.filter("ms", formatting.ms_text)
register.filter("seconds", formatting.seconds_text)
register.filter("impact", formatting.impact_text)
register.filter("bytes", formatting.bytes_text)
register.filter("count", formatting.count_text)
register.filter("speedup", formatting.speedup_text)

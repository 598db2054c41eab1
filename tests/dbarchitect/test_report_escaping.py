"""The Markdown and terminal reports show hostile text as written: every query text, name,
error and LLM text of tests/nlsql/hostile_corpus.py (MARKUP and the SQL corpus), rendered
by a real Markdown renderer (markdown-it-py, raw HTML on as permissive viewers have it),
yields no tag or attribute the report itself does not write, and reads back as the text."""

from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from dbarchitect.models import AuditRun
from dbarchitect.proposals import proposal_text
from dbarchitect.report import report_text
from dbarchitect.reports import audit_report_markdown
from optimizations.models import OptimizationLog
from tests.admin.factories import make_audit, make_recommendation
from tests.nlsql.hostile_corpus import CORPUS, MARKUP

pytestmark = pytest.mark.django_db

HOSTILE = MARKUP + [
    sql for sql, _ in CORPUS if sql.strip() and len(sql) < 500 and "\x00" not in sql
]
# What the report's own Markdown renders to: headings, paragraphs, lists, tables, code.
REPORT_TAGS = {"h1", "h2", "h3", "p", "ul", "li", "table", "thead", "tbody", "tr", "th", "td"}
REPORT_TAGS |= {"pre", "code", "em", "strong", "br"}
REPORT_ATTRIBUTES = {("code", "class", "language-sql")}


class _Rendered(HTMLParser):
    """The tags, attributes and text of rendered HTML."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[tuple[str, str, str | None]] = set()
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update((tag, name, value) for name, value in attrs)

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):
        self.tags.add("<!-- comment -->")


def _render(markdown: str) -> _Rendered:
    return _Rendered(MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown))


def _assert_nothing_live(rendered: _Rendered) -> None:
    assert rendered.tags <= REPORT_TAGS, rendered.tags - REPORT_TAGS
    assert rendered.attributes <= REPORT_ATTRIBUTES, rendered.attributes - REPORT_ATTRIBUTES


@pytest.fixture
def hostile_audit() -> AuditRun:
    """An audit whose every untrusted field holds hostile text."""
    audit = make_audit(
        slow=[(number, text, 80.0) for number, text in enumerate(HOSTILE, start=1)],
        skipped=[{"queryid": 1, "query": text, "reason": text} for text in MARKUP],
    )
    AuditRun.objects.filter(pk=audit.pk).update(
        error=MARKUP[0] + "\n" + MARKUP[10],
        report={
            "verification": MARKUP[1],
            "recommendations": [
                {"recommendation": text, "already_recorded": True} for text in MARKUP
            ],
        },
    )
    for number, text in enumerate(MARKUP):
        log = make_recommendation(
            audit=audit,
            query=text,
            recommendation=text,
            ddl=f"CREATE INDEX i{number} ON t (a) -- {text}",
        )
        plan = [{"Plan": {"Node Type": "Seq Scan", "Relation Name": text, "Total Cost": 1.0}}]
        OptimizationLog.objects.filter(pk=log.pk).update(
            explanation=f"Because {text}\n{text}", table_name=text, pr_url=text, plan_before=plan
        )
    audit.refresh_from_db()
    return audit


def test_the_markdown_report_and_the_pull_request_body_render_hostile_text_as_text(
    hostile_audit,
):
    rendered = _render(audit_report_markdown(audit=hostile_audit))
    _assert_nothing_live(rendered)
    shown = " ".join(" ".join(rendered.text).split())
    for text in MARKUP:
        for line in text.splitlines():  # every line reads back as written
            assert " ".join(line.split()) in shown, line

    logs = list(OptimizationLog.objects.filter(audit=hostile_audit))
    _title, body = proposal_text(audit_id=str(hostile_audit.pk), logs=logs)
    rendered = _render(body)
    _assert_nothing_live(rendered)
    shown = " ".join(" ".join(rendered.text).split())
    assert MARKUP[1] in shown and MARKUP[12] in shown


def test_a_plain_markdown_cell_escape_would_not_do():
    """The check above can fail: raw text in a report lets its HTML through the renderer."""
    with pytest.raises(AssertionError):
        _assert_nothing_live(_render(f"| query |\n|---|\n| {MARKUP[1]} |\n"))


def test_the_terminal_report_shows_control_sequences_escaped():
    hostile = "SELECT 1 \x1b]0;pwned\x07\x1b[2J \u202eevil"
    text = report_text(
        {
            "audit_id": "a1",
            "target": "default",
            "status": "failed",
            "error": f"boom {hostile}",
            "queries": [{"queryid": 1, "calls": 2, "mean_ms": 3.0, "query": hostile}],
        }
    )
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b]0;pwned\\x07\\x1b[2J \\u202eevil" in text
    assert text.count("\n") >= 2  # lines stay lines

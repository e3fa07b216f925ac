"""The server-rendered SVG charts of the operator's statistics (issue 13, "Charts")."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from relying_parties.charts import bar_chart, column_chart

SVG = "{http://www.w3.org/2000/svg}"
EMPTY = "no transactions in this period"


def parse(markup: str) -> ET.Element:
    """Parse a chart as XML: it must be a well-formed SVG document of its own."""
    root = ET.fromstring(markup)  # noqa: S314 - our own markup, made by the test
    assert root.tag == f"{SVG}svg"
    return root


def bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if "bar" in (r.get("class") or "").split()]


def test_a_bar_chart_is_valid_svg_with_a_title_a_description_and_a_viewbox() -> None:
    root = parse(bar_chart("c1", [("tax.income", 3)], title="Per dataset", description="Transactions", empty=EMPTY))
    assert root.get("viewBox")
    assert root.get("width") == "100%"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    title = root.find(f"{SVG}title")
    desc = root.find(f"{SVG}desc")
    assert title is not None
    assert desc is not None
    assert (title.get("id"), title.text) == ("c1-title", "Per dataset")
    assert (desc.get("id"), desc.text) == ("c1-desc", "Transactions")


def test_bar_lengths_are_proportional_to_the_values() -> None:
    root = parse(bar_chart("c", [("a", 2), ("b", 4), ("c", 1)], title="t", description="d", empty=EMPTY))
    widths = [float(r.get("width") or "nan") for r in bars(root)]
    assert len(widths) == 3
    assert widths[1] == pytest.approx(2 * widths[0], rel=1e-3)
    assert widths[0] == pytest.approx(2 * widths[2], rel=1e-3)


def test_every_bar_says_its_label_and_value_in_text_not_by_colour_alone() -> None:
    root = parse(bar_chart("c", [("household.registration", 12), ("tax.income", 5)], title="t", description="d",
                           empty=EMPTY))  # fmt: skip
    words = [t.text for t in root.iter(f"{SVG}text")]
    assert "household.registration" in words
    assert "tax.income" in words
    assert "12" in words
    assert "5" in words


def test_labels_are_escaped() -> None:
    root = parse(bar_chart("c", [("<b>&", 1)], title="a<b", description="c&d", empty=EMPTY))
    assert "<b>&" in [t.text for t in root.iter(f"{SVG}text")]
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == "a<b"


def test_a_chart_with_no_data_says_so() -> None:
    for markup in (
        bar_chart("c", [], title="t", description="d", empty=EMPTY),
        bar_chart("c", [("a", 0)], title="t", description="d", empty=EMPTY),
        column_chart("c", [], title="t", description="d", empty=EMPTY),
        column_chart("c", [("2026-12-01", 0), ("2026-12-02", 0)], title="t", description="d", empty=EMPTY),
    ):
        root = parse(markup)
        assert bars(root) == []
        assert EMPTY in [t.text for t in root.iter(f"{SVG}text")]


def test_column_heights_are_proportional_and_in_the_order_given() -> None:
    days = [("2026-12-01", 1), ("2026-12-02", 0), ("2026-12-03", 3)]
    root = parse(column_chart("d", days, title="Per day", description="Transactions per day", empty=EMPTY))
    columns = bars(root)
    # A day without transactions has no column, but keeps its place.
    assert [c.get("data-label") for c in columns] == ["2026-12-01", "2026-12-03"]
    heights = [float(c.get("height") or "nan") for c in columns]
    assert heights[1] == pytest.approx(3 * heights[0], rel=1e-3)
    xs = [float(c.get("x") or "nan") for c in columns]
    assert xs[0] < xs[1]
    # Every column's bottom is on the same base line.
    bottoms = {round(float(c.get("y") or "nan") + float(c.get("height") or "nan"), 6) for c in columns}
    assert len(bottoms) == 1


def test_a_column_chart_names_its_first_and_last_day_and_its_scale() -> None:
    days = [(f"2026-12-{d:02d}", d) for d in range(1, 31)]
    root = parse(column_chart("d", days, title="t", description="d", empty=EMPTY))
    words = [t.text for t in root.iter(f"{SVG}text")]
    assert "12-01" in words
    assert "12-30" in words
    assert "30" in words  # the top of the scale

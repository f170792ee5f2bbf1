"""The console's SVG charts: shapes for the values, nothing else from outside."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from service.web.console import charts

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def test_bars_draw_one_rect_per_value_above_zero_scaled_to_the_largest() -> None:
    root = parse(charts.bars([0, 1, 4, 2], label="deliveries", unit="/min"))
    rects = root.findall(f"{NS}rect")
    assert len(rects) == 3
    heights = [float(r.attrib["height"]) for r in rects]
    assert heights[1] == charts.HEIGHT - 14 and heights[0] == heights[1] / 4
    assert "max 4 /min" in (root.findtext(f"{NS}title") or "")


def test_an_empty_or_all_zero_series_draws_no_shape() -> None:
    for values in ([], [0, 0, 0]):
        root = parse(charts.bars(values, label="x", unit="u"))
        assert root.findall(f"{NS}rect") == []
    assert parse(charts.line([None, None], label="x", unit="s")).findall(f"{NS}polyline") == []


def test_a_line_breaks_where_values_are_missing() -> None:
    root = parse(charts.line([1.0, 2.0, None, 3.0, 4.0, None, 5.0], label="lag", unit="s"))
    assert len(root.findall(f"{NS}polyline")) == 2
    assert len(root.findall(f"{NS}circle")) == 1  # a lone point between gaps


def test_the_label_is_escaped() -> None:
    svg = charts.bars([1], label='<script>"&', unit="u")
    assert "<script>" not in svg
    assert parse(svg).findtext(f"{NS}title") == '<script>"& (max 1 u)'

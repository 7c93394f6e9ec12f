import math

from orbitml.report.html import format_number, table_html


def test_numbers_for_people():
    assert format_number(math.nan) == "n/a"
    assert format_number(0.99996) == "0.99996"  # not a rounded "1" that hides wrong pixels
    assert format_number(1.0) == "1"
    assert format_number(0.123456) == "0.1235"
    assert format_number(-0.999999) == "-0.999999"
    html = table_html([{"a": math.nan, "b": 0.9999999}])
    assert "nan" not in html and "n/a" in html and "0.9999999" in html

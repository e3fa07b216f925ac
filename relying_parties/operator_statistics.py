"""The operator's statistics (/console/operator/statistics): how the platform is doing, with charts.

A GET form chooses the period (default the last 30 days); the page shows each figure as an SVG chart
with a table of the same numbers beside it (:mod:`relying_parties.charts`), and no personal data.
"""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue

from mydata.clock import clock
from mydata.db import unit_of_work
from relying_parties import statistics
from relying_parties.charts import bar_chart, column_chart
from relying_parties.consoles import console_blueprint
from relying_parties.interfaces import StatisticsPeriodInvalid

bp = console_blueprint("operator", __name__, section="statistics")


@bp.get("")
def index() -> ResponseReturnValue:
    """Show the chosen period's statistics, or the form with the field at fault (400)."""
    first, last = request.args.get("from"), request.args.get("to")
    try:
        period = statistics.choose_period(first, last, today=statistics.today(clock().now()))
    except StatisticsPeriodInvalid as error:
        return render_template("console/operator/statistics.html", error=error, first=first, last=last), 400
    found = statistics.operator_statistics(unit_of_work(), period)
    return render_template(
        "console/operator/statistics.html",
        error=None,
        first=period.first.isoformat(),
        last=period.last.isoformat(),
        stats=found,
        bar_chart=bar_chart,
        column_chart=column_chart,
    )

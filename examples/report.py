"""A sales report as a multi-page PDF: the kind of job that is too slow for a web request.

The data is synthetic but deterministic: the same (title, months, regions, seed) always gives
the same numbers, so a retried job renders the same report. The PDF has a summary page, a bar
chart page, a trend page and one detail page per region (``3 + regions`` pages). The task
reports progress at every stage and checks for cancellation between stages.
"""

from __future__ import annotations

import csv
import io
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from conveyor import JobContext

ALL_REGIONS = ("North", "South", "East", "West", "Central", "Coastal", "Mountain", "Islands")
PALETTE = [
    colors.HexColor(c) for c in ("#2563eb", "#16a34a", "#dc2626", "#ca8a04", "#9333ea", "#0891b2", "#ea580c", "#4b5563")
]
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
STATIC_PAGES = 3
"""Summary, bar chart, trend; then one page per region."""

Title = Annotated[str, Field(min_length=1, max_length=120)]
Months = Annotated[int, Field(ge=1, le=36, description="How many months of data, ending Dec 2024")]
Regions = Annotated[int, Field(ge=1, le=len(ALL_REGIONS), description="How many sales regions")]
Pace = Annotated[float, Field(ge=0, le=5, description="Seconds to pause per stage, to watch progress in a demo")]


@dataclass(frozen=True)
class SalesData:
    """Monthly revenue and orders per region."""

    months: list[str]
    regions: list[str]
    revenue: dict[str, list[float]]
    orders: dict[str, list[int]]

    def total_revenue(self) -> float:
        return round(sum(sum(v) for v in self.revenue.values()), 2)

    def monthly_totals(self) -> list[float]:
        return [round(sum(self.revenue[r][i] for r in self.regions), 2) for i in range(len(self.months))]


def month_labels(months: int) -> list[str]:
    """``months`` labels ending at Dec 2024, oldest first."""
    labels = []
    for back in range(months - 1, -1, -1):
        index = 12 * 2024 + 11 - back
        labels.append(f"{MONTH_NAMES[index % 12]} {index // 12}")
    return labels


def generate_data(title: str, months: int, regions: int, seed: int) -> SalesData:
    """Synthetic sales with trend and seasonality, fully determined by the arguments."""
    rng = random.Random(f"{title}|{months}|{regions}|{seed}")
    labels = month_labels(months)
    names = list(ALL_REGIONS[:regions])
    revenue: dict[str, list[float]] = {}
    orders: dict[str, list[int]] = {}
    for name in names:
        base = rng.uniform(40_000, 120_000)
        growth = rng.uniform(-0.01, 0.04)
        revenue[name], orders[name] = [], []
        for i, label in enumerate(labels):
            season = 1.0 + 0.15 * (label.startswith(("Nov", "Dec")) - label.startswith(("Jan", "Feb")))
            value = base * (1 + growth) ** i * season * rng.uniform(0.9, 1.1)
            revenue[name].append(round(value, 2))
            orders[name].append(max(1, int(value / rng.uniform(80, 120))))
    return SalesData(labels, names, revenue, orders)


def _money(value: float) -> str:
    return f"${value:,.0f}"


def _table(rows: list[list[str]], widths: list[float] | None = None) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1f2937")),
                ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f4f6")]),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#d1d5db")),
            ]
        )
    )
    return table


def summary_flowables(data: SalesData, title: str) -> list[Flowable]:
    styles = getSampleStyleSheet()
    rows = [["Region", "Revenue", "Orders", "Avg order", "Best month"]]
    for name in data.regions:
        revenue, orders = sum(data.revenue[name]), sum(data.orders[name])
        best = data.months[max(range(len(data.months)), key=lambda i: data.revenue[name][i])]
        rows.append([name, _money(revenue), f"{orders:,}", _money(revenue / orders), best])
    total, total_orders = data.total_revenue(), sum(sum(v) for v in data.orders.values())
    rows.append(["Total", _money(total), f"{total_orders:,}", _money(total / total_orders), ""])
    period = f"{data.months[0]} to {data.months[-1]}"
    return [
        Paragraph(title, styles["Title"]),
        Paragraph(f"Sales report, {period}, {len(data.regions)} region(s).", styles["Normal"]),
        Spacer(1, 0.6 * cm),
        _table(rows),
    ]


def _month_axis(chart: VerticalBarChart | HorizontalLineChart, data: SalesData) -> None:
    """Month names under the chart; slanted when there are too many to fit side by side."""
    chart.categoryAxis.categoryNames = [m.split()[0] for m in data.months]
    chart.categoryAxis.labels.fontSize = 6
    if len(data.months) > 18:
        chart.categoryAxis.labels.angle = 45
        chart.categoryAxis.labels.boxAnchor = "ne"


def bar_chart(data: SalesData) -> Drawing:
    """Revenue per region, one group of bars per month."""
    drawing = Drawing(17 * cm, 12 * cm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 40, 60, 17 * cm - 60, 12 * cm - 100
    chart.data = [data.revenue[name] for name in data.regions]
    _month_axis(chart, data)
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.labelTextFormat = lambda v: f"{v / 1000:.0f}k"
    for i in range(len(data.regions)):
        chart.bars[i].fillColor = PALETTE[i]
    drawing.add(chart)
    drawing.add(_legend(data.regions, 40, 25))
    drawing.add(String(40, 12 * cm - 20, "Monthly revenue by region", fontSize=12))
    return drawing


def trend_chart(data: SalesData) -> Drawing:
    """Total revenue per month as a line, with a 3-month moving average."""
    totals = data.monthly_totals()
    moving = [sum(totals[max(0, i - 2) : i + 1]) / len(totals[max(0, i - 2) : i + 1]) for i in range(len(totals))]
    drawing = Drawing(17 * cm, 12 * cm)
    chart = HorizontalLineChart()
    chart.x, chart.y, chart.width, chart.height = 40, 60, 17 * cm - 60, 12 * cm - 100
    chart.data = [totals, moving]
    _month_axis(chart, data)
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.labelTextFormat = lambda v: f"{v / 1000:.0f}k"
    chart.lines[0].strokeColor, chart.lines[0].strokeWidth = PALETTE[0], 2
    chart.lines[1].strokeColor, chart.lines[1].strokeDashArray = PALETTE[2], (4, 2)
    drawing.add(chart)
    drawing.add(_legend(["Total revenue", "3-month average"], 40, 25, [PALETTE[0], PALETTE[2]]))
    drawing.add(String(40, 12 * cm - 20, "Revenue trend", fontSize=12))
    return drawing


def _legend(names: list[str], x: float, y: float, palette: list[colors.Color] | None = None) -> Legend:
    legend = Legend()
    legend.x, legend.y = x, y
    legend.fontSize = 7
    legend.columnMaximum = 1
    legend.alignment = "right"
    legend.colorNamePairs = list(zip(palette or PALETTE, names, strict=False))
    return legend


def region_flowables(data: SalesData, name: str) -> list[Flowable]:
    styles = getSampleStyleSheet()
    rows = [["Month", "Revenue", "Orders", "Avg order"]]
    for i, month in enumerate(data.months):
        revenue, orders = data.revenue[name][i], data.orders[name][i]
        rows.append([month, _money(revenue), f"{orders:,}", _money(revenue / orders)])
    return [Paragraph(f"Region: {name}", styles["Heading1"]), Spacer(1, 0.3 * cm), _table(rows)]


def _footer(title: str):  # type: ignore[no-untyped-def]
    def draw(canvas, doc) -> None:  # type: ignore[no-untyped-def]
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(2 * cm, 1.2 * cm, title[:80])
        canvas.drawRightString(A4[0] - 2 * cm, 1.2 * cm, f"page {doc.page}")
        canvas.restoreState()

    return draw


def render_pdf(story: list[Flowable], title: str, path: Path) -> int:
    """Write the PDF and return its page count."""
    doc = SimpleDocTemplate(str(path), pagesize=A4, title=title, author="Conveyor example", topMargin=2 * cm)
    footer = _footer(title)
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return int(doc.page)


def data_csv(data: SalesData) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["month", "region", "revenue", "orders"])
    for name in data.regions:
        for i, month in enumerate(data.months):
            writer.writerow([month, name, f"{data.revenue[name][i]:.2f}", data.orders[name][i]])
    return out.getvalue().encode()


def report(
    ctx: JobContext, title: Title, months: Months = 12, regions: Regions = 4, seed: int = 0, pace: Pace = 0.0
) -> dict[str, object]:
    """Render a sales report PDF (and its data as CSV) into the job's artifacts."""

    def stage(fraction: float, message: str) -> None:
        ctx.raise_if_cancelled()
        ctx.progress(fraction, message)
        if pace:
            time.sleep(pace)

    stage(0.05, "generating data")
    data = generate_data(title, months, regions, seed)
    stage(0.15, "summarising")
    story: list[Flowable] = [*summary_flowables(data, title), PageBreak()]
    stage(0.25, "drawing revenue chart")
    story += [bar_chart(data), PageBreak()]
    stage(0.35, "drawing trend chart")
    story += [trend_chart(data), PageBreak()]
    for i, name in enumerate(data.regions):
        stage(0.35 + 0.4 * (i + 1) / len(data.regions), f"region {name} ({i + 1}/{len(data.regions)})")
        story += region_flowables(data, name)
        if i < len(data.regions) - 1:
            story.append(PageBreak())
    stage(0.8, "rendering PDF")
    path = ctx.scratch_dir / "report.pdf"
    pages = render_pdf(story, title, path)
    stage(0.95, "saving artifacts")
    pdf = ctx.save_artifact("report.pdf", path, "application/pdf")
    ctx.save_artifact("data.csv", data_csv(data), "text/csv")
    return {"pages": pages, "bytes": pdf.size, "total_revenue": data.total_revenue(), "months": months}

"""What the dashboard's pages show, from the query string to the figures: no HTTP, no HTML here.

Filters arrive as GET parameters: ``from`` and ``to`` (``YYYY-MM-DD``, inclusive, UTC days of the
video's creation) and ``status`` (an API status word). A value that does not parse is reported on
the page and ignored, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import get_args

from shared.dashboard.chart import DailyChart, daily_chart
from shared.service.models import ApiStatus, api_status, task_status
from shared.storage.cost_reports import CostFilter, CostOverview, CostReports, VideoCost
from shared.storage.costs import CostEntry, CostStore

STATUSES: tuple[str, ...] = get_args(ApiStatus)
VIDEO_ROWS = 100


@dataclass(frozen=True)
class DashboardQuery:
    start: date | None = None
    end: date | None = None
    status: str | None = None
    problems: tuple[str, ...] = ()

    def cost_filter(self) -> CostFilter:
        return CostFilter(
            since=datetime.combine(self.start, time(), UTC) if self.start else None,
            until=datetime.combine(self.end + timedelta(days=1), time(), UTC) if self.end else None,
            statuses=(task_status(self.status),) if self.status else (),
        )

    @property
    def filtered(self) -> bool:
        return bool(self.start or self.end or self.status)


def parse_query(start: str | None, end: str | None, status: str | None) -> DashboardQuery:
    problems: list[str] = []

    def day(value: str | None, name: str) -> date | None:
        if not value:
            return None
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            problems.append(f"{value[:40]!r} is not a date for {name}: use YYYY-MM-DD.")
            return None

    first, last = day(start, "From"), day(end, "To")
    if first and last and first > last:
        problems.append("From is after To: the dates were swapped.")
        first, last = last, first
    chosen = (status or "").strip() or None
    if chosen is not None and chosen not in STATUSES:
        problems.append(f"{chosen[:40]!r} is not a status; showing every status.")
        chosen = None
    return DashboardQuery(start=first, end=last, status=chosen, problems=tuple(problems))


@dataclass
class OverviewPage:
    query: DashboardQuery
    overview: CostOverview
    videos: list[VideoCost]
    most_expensive: list[VideoCost]
    chart: DailyChart
    statuses: tuple[str, ...] = STATUSES
    video_rows: int = VIDEO_ROWS

    @property
    def average_usd(self) -> float | None:
        return self.overview.total_usd / self.overview.videos if self.overview.videos else None


def overview_page(reports: CostReports, tenant_id: str, query: DashboardQuery) -> OverviewPage:
    flt = query.cost_filter()
    overview = reports.overview(tenant_id, flt)
    return OverviewPage(
        query=query,
        overview=overview,
        videos=reports.videos(tenant_id, flt, limit=VIDEO_ROWS),
        most_expensive=reports.most_expensive(tenant_id, flt, limit=5),
        chart=daily_chart(overview.daily),
    )


@dataclass
class VideoPage:
    video: VideoCost
    entries: list[CostEntry] = field(default_factory=list)

    @property
    def status(self) -> str:
        return api_status(self.video.status)


def video_page(reports: CostReports, costs: CostStore, tenant_id: str, task_id: str) -> VideoPage:
    """Raises NotFoundError for an unknown task or another tenant's."""
    video = reports.video(tenant_id, task_id)
    return VideoPage(video=video, entries=costs.entries(task_id))

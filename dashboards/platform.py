"""Platform health: "Sức khỏe nền tảng" (uid ``ioc-platform``), the operators' screen.

Reads the platform's own Prometheus metrics (:mod:`ioc.infra.metrics`; data source uid
``ioc-prometheus``, scraped by ``infra/prometheus/prometheus.yml``), not ClickHouse, so it still
works when the sink or ClickHouse is the thing that is broken. One 1920x1080 kiosk screen,
24 columns × 27 rows:

====  ============================================================================
rows  panels
====  ============================================================================
0–3   processes up (worker, sink) · events in per second · consumer lag ·
      dead letters per minute · alert state changes in the last hour
4–11  throughput in and out per component and topic (events per second)
12–18 consumer lag per component and topic · dead letters by topic and error type ·
      sink retries and skipped messages · alerts emitted by rule and status
19–26 ClickHouse insert time (p95) · rows per insert · end-to-end latency (p95) ·
      open windows and held events of the stream worker
====  ============================================================================

Metric names: prometheus_client exports a counter ``ioc_x`` as ``ioc_x_total`` and a histogram
as ``_bucket`` / ``_sum`` / ``_count`` series. The ``component`` label is ``streams`` (the
worker) or ``sink``; ``up`` comes from Prometheus itself for each scrape job in
:data:`SCRAPE_JOBS`. The same expressions, with thresholds, are the platform's alert rules in
``infra/prometheus/rules.yml``. Every expression is parsed by a real PromQL parser in the tests,
and every metric and label name is checked against a real ``Metrics`` exposition.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import prometheus as prometheus_builder
from grafana_foundation_sdk.builders import stat as stat_builder
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model

from ioc.dashboards.common import add_panels, grid, thresholds, wall_dashboard

UID = "ioc-platform"
TITLE = "Sức khỏe nền tảng"
TAGS = ["ioc", "van-hanh", "ops", "platform", "wall"]

PROMETHEUS_TYPE = "prometheus"
PROMETHEUS_UID = "ioc-prometheus"
PROMETHEUS = dashboard_model.DataSourceRef(type_val=PROMETHEUS_TYPE, uid=PROMETHEUS_UID)

SCRAPE_JOBS = {"ioc-worker": "Bộ xử lý luồng", "ioc-sink": "Bộ ghi ClickHouse"}
"""Prometheus scrape job → its name on the screen. ``ioc run`` serves the worker's metrics on
``IOC_METRICS_PORT`` (9464) and the sink's on the next port (9465)."""

COMPONENTS = ("streams", "sink")
"""Values of the ``component`` label (set in ``streams/app.py`` and ``connectors/sink.py``)."""

JOBS_RE = "|".join(SCRAPE_JOBS)
RATE = "$__rate_interval"
"""Grafana's rate window: at least four scrape intervals, so ``rate`` always has two samples."""

UP_EXPR = f'up{{job=~"{JOBS_RE}"}}'
EVENTS_IN_EXPR = f'sum(rate(ioc_events_in_total{{component="streams"}}[{RATE}]))'
LAG_EXPR = "sum(ioc_consumer_lag)"
DLQ_PER_MIN_EXPR = f"sum(rate(ioc_dead_letters_total[{RATE}])) * 60"
ALERTS_1H_EXPR = "sum(increase(ioc_alerts_emitted_total[1h]))"


def prom(expr: str, legend: str = "", ref_id: str = "A", *,
         instant: bool = False) -> prometheus_builder.Dataquery:
    """A PromQL target on the platform's Prometheus (code editor, range or instant)."""
    query = (prometheus_builder.Dataquery()
             .expr(expr)
             .ref_id(ref_id)
             .datasource(PROMETHEUS)
             .editor_mode(prometheus_builder.prometheus.QueryEditorMode.CODE))
    if legend:
        query.legend_format(legend)
    return query.instant() if instant else query.range()


def _stat(title: str, expr: str, pos: dashboard_model.GridPos, *, unit: str,
          steps: Sequence[tuple[float | None, str]], description: str,
          legend: str = "", decimals: int | None = 0) -> stat_builder.Panel:
    panel = (stat_builder.Panel()
             .title(title)
             .description(description)
             .datasource(PROMETHEUS)
             .grid_pos(pos)
             .with_target(prom(expr, legend, instant=True))
             .unit(unit)
             .thresholds(thresholds(*steps))
             .color_scheme(dashboard_builder.FieldColor()
                           .mode(dashboard_model.FieldColorModeId.THRESHOLDS))
             .color_mode(common_model.BigValueColorMode.BACKGROUND)
             .graph_mode(common_model.BigValueGraphMode.NONE)
             .justify_mode(common_model.BigValueJustifyMode.CENTER)
             .text_mode(common_model.BigValueTextMode.VALUE_AND_NAME if legend
                        else common_model.BigValueTextMode.VALUE)
             .reduce_options(common_builder.ReduceDataOptions()
                             .calcs(["lastNotNull"]).fields("").values(False))
             .no_value("Không có dữ liệu"))
    if decimals is not None:
        panel.decimals(decimals)
    return panel


def _timeseries(title: str, targets: Sequence[prometheus_builder.Dataquery],
                pos: dashboard_model.GridPos, *, unit: str, description: str,
                ) -> timeseries_builder.Panel:
    panel = (timeseries_builder.Panel()
             .title(title)
             .description(description)
             .datasource(PROMETHEUS)
             .grid_pos(pos)
             .unit(unit)
             .min(0)
             .line_width(2)
             .fill_opacity(10)
             .show_points(common_model.VisibilityMode.NEVER)
             .span_nulls(False)
             .legend(common_builder.VizLegendOptions()
                     .display_mode(common_model.LegendDisplayMode.LIST)
                     .placement(common_model.LegendPlacement.BOTTOM)
                     .show_legend(True))
             .tooltip(common_builder.VizTooltipOptions()
                      .mode(common_model.TooltipDisplayMode.MULTI)
                      .sort(common_model.SortOrder.DESCENDING)))
    for target in targets:
        panel.with_target(target)
    return panel


def _processes_up() -> stat_builder.Panel:
    """One coloured box per scrape job: "Đang chạy" (up = 1) or "Ngừng" (the scrape failed)."""
    panel = _stat("Tiến trình đang chạy", UP_EXPR, grid(0, 0, 6, 4), unit="none",
                  steps=((None, "red"), (1, "green")), legend="{{job}}",
                  description="Kết quả lần thu thập số liệu gần nhất của Prometheus cho từng "
                              "tiến trình: xanh – đang chạy, đỏ – không phản hồi.")
    panel.mappings([dashboard_model.ValueMap(options={
        "0": dashboard_model.ValueMappingResult(text="Ngừng", color="red", index=0),
        "1": dashboard_model.ValueMappingResult(text="Đang chạy", color="green", index=1),
    })])
    for job, name in sorted(SCRAPE_JOBS.items()):
        panel.override_by_name(job, [dashboard_model.DynamicConfigValue("displayName", name)])
    return panel


def _stats() -> list[cogbuilder.Builder[dashboard_model.Panel]]:
    return [
        _processes_up(),
        _stat("Sự kiện vào mỗi giây", EVENTS_IN_EXPR, grid(6, 0, 4, 4), unit="short",
              steps=((None, "blue"),), decimals=1,
              description="Số thông điệp bộ xử lý luồng đọc được mỗi giây, mọi chủ đề."),
        _stat("Độ trễ tiêu thụ", LAG_EXPR, grid(10, 0, 4, 4), unit="short",
              steps=((None, "green"), (1000, "orange"), (10000, "red")),
              description="Tổng số thông điệp đã có trên Kafka nhưng chưa được đọc (mọi thành "
                          "phần, chủ đề, phân vùng). Cảnh báo khi > 1000 và đang tăng."),
        _stat("Bản ghi lỗi (DLQ) mỗi phút", DLQ_PER_MIN_EXPR, grid(14, 0, 5, 4), unit="short",
              steps=((None, "green"), (1, "orange"), (6, "red")), decimals=1,
              description="Số bản ghi bị chuyển vào chủ đề lỗi (dead-letter) mỗi phút."),
        _stat("Thay đổi cảnh báo (1 giờ)", ALERTS_1H_EXPR, grid(19, 0, 5, 4), unit="short",
              steps=((None, "blue"),),
              description="Số lần cảnh báo được bật hoặc kết thúc trong 1 giờ qua, mọi quy tắc."),
    ]


def _throughput() -> list[cogbuilder.Builder[dashboard_model.Panel]]:
    legend = "{{component}} · {{topic}}"
    return [
        _timeseries("Thông lượng vào (sự kiện/giây)",
                    [prom(f"sum by (component, topic) (rate(ioc_events_in_total[{RATE}]))",
                          legend)],
                    grid(0, 4, 12, 8), unit="short",
                    description="Thông điệp đọc từ Kafka mỗi giây, theo thành phần và chủ đề."),
        _timeseries("Thông lượng ra (bản ghi/giây)",
                    [prom(f"sum by (component, topic) (rate(ioc_events_out_total[{RATE}]))",
                          legend)],
                    grid(12, 4, 12, 8), unit="short",
                    description="Bản ghi ghi ra mỗi giây: KPI và cảnh báo lên Kafka (streams), "
                                "dòng vào bảng ClickHouse (sink)."),
    ]


def _health() -> list[cogbuilder.Builder[dashboard_model.Panel]]:
    return [
        _timeseries("Độ trễ tiêu thụ theo chủ đề",
                    [prom("sum by (component, topic) (ioc_consumer_lag)",
                          "{{component}} · {{topic}}")],
                    grid(0, 12, 6, 7), unit="short",
                    description="Thông điệp chưa đọc, theo thành phần và chủ đề."),
        _timeseries("Bản ghi lỗi (DLQ) theo chủ đề",
                    [prom(f"sum by (topic, error_type) (rate(ioc_dead_letters_total[{RATE}]))"
                          " * 60", "{{topic}} · {{error_type}}")],
                    grid(6, 12, 6, 7), unit="short",
                    description="Bản ghi chuyển vào chủ đề lỗi mỗi phút, theo chủ đề và loại lỗi."),
        _timeseries("Ghi ClickHouse: thử lại và bỏ qua",
                    [prom(f"sum by (table, reason) (rate(ioc_sink_retries_total[{RATE}])) * 60",
                          "thử lại · {{table}} · {{reason}}"),
                     prom(f"sum by (topic) (rate(ioc_sink_skipped_total[{RATE}])) * 60",
                          "bỏ qua · {{topic}}", "B")],
                    grid(12, 12, 6, 7), unit="short",
                    description="Số lần ghi ClickHouse phải thử lại (quá tải, hết thời gian) và "
                                "thông điệp không giải mã được mà bộ ghi bỏ qua, mỗi phút."),
        _timeseries("Cảnh báo phát ra theo quy tắc",
                    [prom(f"sum by (rule, status) (increase(ioc_alerts_emitted_total[{RATE}]))",
                          "{{rule}} · {{status}}")],
                    grid(18, 12, 6, 7), unit="short",
                    description="Số lần cảnh báo bật (firing) hoặc kết thúc (resolved), theo "
                                "quy tắc."),
    ]


def _latency() -> list[cogbuilder.Builder[dashboard_model.Panel]]:
    return [
        _timeseries("Thời gian ghi ClickHouse (p95)",
                    [prom("histogram_quantile(0.95, sum by (table, le) "
                          f"(rate(ioc_sink_batch_seconds_bucket[{RATE}])))", "{{table}}")],
                    grid(0, 19, 6, 8), unit="s",
                    description="95% số lần ghi một lô vào ClickHouse xong trong thời gian này."),
        _timeseries("Số dòng mỗi lần ghi",
                    [prom(f"sum by (table) (rate(ioc_sink_batch_rows_sum[{RATE}])) / "
                          f"sum by (table) (rate(ioc_sink_batch_rows_count[{RATE}]))",
                          "{{table}}")],
                    grid(6, 19, 6, 8), unit="short",
                    description="Số dòng trung bình của một lần ghi (lô) vào ClickHouse; lô lớn "
                                "là tốt, ghi từng dòng là dấu hiệu bất thường."),
        _timeseries("Độ trễ đầu-cuối (p95)",
                    [prom("histogram_quantile(0.95, sum by (topic, le) "
                          f"(rate(ioc_end_to_end_latency_seconds_bucket[{RATE}])))",
                          "{{topic}}")],
                    grid(12, 19, 6, 8), unit="s",
                    description="Từ thời điểm xảy ra sự kiện đến khi được lưu vào ClickHouse, "
                                "95% sự kiện nhanh hơn mức này."),
        _timeseries("Cửa sổ đang mở và sự kiện đang giữ",
                    [prom("sum(ioc_stream_open_windows)", "cửa sổ đang mở"),
                     prom("sum(ioc_stream_held_events)", "sự kiện đang giữ", "B")],
                    grid(18, 19, 6, 8), unit="short",
                    description="Cửa sổ KPI chưa đóng và số sự kiện chưa được xác nhận (commit) "
                                "vì còn nằm trong cửa sổ hoặc quy tắc đang mở."),
    ]


def build() -> dashboard_model.Dashboard:
    """The platform-health dashboard model (a fresh object on every call)."""
    builder = wall_dashboard(
        UID, TITLE, TAGS,
        description="Màn hình vận hành: tiến trình, thông lượng, độ trễ tiêu thụ, bản ghi lỗi, "
                    "ghi ClickHouse và cảnh báo phát ra, từ Prometheus.")
    builder.time("now-3h", "now")
    add_panels(builder, [*_stats(), *_throughput(), *_health(), *_latency()])
    return builder.build()

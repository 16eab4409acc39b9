"""The ClickHouse Grafana plugin's SQL macros, expanded the way the plugin expands them.

Dashboards send raw SQL with ``$__`` macros to the ``grafana-clickhouse-datasource`` plugin,
which replaces them in its backend before ClickHouse sees the query. Tests (and the lead's checks
on real pipeline data) run the same SQL against chDB, so they need the same expansion. The
outputs below follow the plugin's documented macro table (``docs/sources/query-editor.md``) and
its ``pkg/macros/macros.go``; argument parsing follows grafana-plugin-sdk-go's ``sqlutil``
interpolator (used by the plugin through sqlds):

- a macro is ``$__name`` where ``name`` is the whole word (``$__timeFilter_ms`` is never read as
  ``$__timeFilter`` followed by ``_ms``);
- it takes arguments only when ``(`` follows the name immediately; arguments are split on commas
  at the top bracket level and trimmed; an unclosed bracket is an error;
- the expansion is not scanned again.

``$__conditionalAll`` is expanded by the plugin's frontend, before template variables; it is
supported here through ``variables`` (name → current value, ``"$__all"`` for "All").

Anything else that starts with ``$__`` raises :class:`ValueError`, so a typo such as
``$__timefilter`` fails in a test instead of reaching ClickHouse as a syntax error. Grafana's
global variables (``$__interval``, ``$__from``, ``$__to``, ``$__range`` …) are not plugin macros
and are rejected as well; the dashboards do not use them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_NAME = re.compile(r"\$__(\w+)")
_TEMPLATE_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*['\"]?(\d+(?:\.\d+)?)(ms|s|m|h|d|w)['\"]?\s*$")


@dataclass(frozen=True)
class _Context:
    time_from: datetime
    time_to: datetime
    interval: timedelta


def _seconds(t: datetime) -> int:
    # Go's time.Unix(): whole seconds, rounded towards -inf.
    return int(t.timestamp() // 1)


def _millis(t: datetime) -> int:
    return int((t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1))


def _to_date(t: datetime) -> str:
    # The plugin formats the time.Time as it arrives (UTC from Grafana).
    return f"toDate('{t.astimezone(UTC).strftime('%Y-%m-%d')}')"


def _to_datetime(t: datetime) -> str:
    return f"toDateTime({_seconds(t)})"


def _to_datetime64(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({_millis(t)})"


def _expect(name: str, args: list[str] | None, count: int) -> list[str]:
    got = len(args) if args is not None else 0
    if got != count:
        raise ValueError(
            f"$__{name}: unexpected number of arguments: expected {count}, received {got}")
    assert args is not None
    return args


def _time_filter(ctx: _Context, args: list[str] | None) -> str:
    (col,) = _expect("timeFilter", args, 1)
    return f"{col} >= {_to_datetime(ctx.time_from)} AND {col} <= {_to_datetime(ctx.time_to)}"


def _time_filter_ms(ctx: _Context, args: list[str] | None) -> str:
    (col,) = _expect("timeFilter_ms", args, 1)
    return (f"{col} >= {_to_datetime64(ctx.time_from)} AND "
            f"{col} <= {_to_datetime64(ctx.time_to)}")


def _date_filter(ctx: _Context, args: list[str] | None) -> str:
    (col,) = _expect("dateFilter", args, 1)
    return f"{col} >= {_to_date(ctx.time_from)} AND {col} <= {_to_date(ctx.time_to)}"


def _date_time_filter(ctx: _Context, args: list[str] | None) -> str:
    date_col, time_col = _expect("dateTimeFilter", args, 2)
    return (f"({date_col} >= {_to_date(ctx.time_from)} AND "
            f"{date_col} <= {_to_date(ctx.time_to)}) AND "
            f"({time_col} >= {_to_datetime(ctx.time_from)} AND "
            f"{time_col} <= {_to_datetime(ctx.time_to)})")


def _time_from(ctx: _Context, args: list[str] | None) -> str:
    (col,) = _expect("timeFrom", args, 1)
    return f"{col} >= {_to_datetime(ctx.time_from)}"


def _time_to(ctx: _Context, args: list[str] | None) -> str:
    (col,) = _expect("timeTo", args, 1)
    return f"{col} <= {_to_datetime(ctx.time_to)}"


def _interval_seconds(ctx: _Context) -> int:
    return int(max(ctx.interval.total_seconds(), 1))


def _time_interval(ctx: _Context, args: list[str] | None) -> str:
    (col,) = _expect("timeInterval", args, 1)
    return f"toStartOfInterval(toDateTime({col}), INTERVAL {_interval_seconds(ctx)} second)"


def _time_interval_ms(ctx: _Context, args: list[str] | None) -> str:
    (col,) = _expect("timeInterval_ms", args, 1)
    ms = int(max(ctx.interval / timedelta(milliseconds=1), 1))
    return f"toStartOfInterval(toDateTime64({col}, 3), INTERVAL {ms} millisecond)"


def _time_group(ctx: _Context, args: list[str] | None) -> str:
    col, period = _expect("timeGroup", args, 2)
    m = _DURATION.match(period)
    if not m:
        raise ValueError(f"$__timeGroup: cannot read the period {period!r} (use e.g. 5m)")
    seconds = int(max(float(m.group(1)) * _UNIT_SECONDS[m.group(2)], 1))
    return f"toStartOfInterval(toDateTime({col}), INTERVAL {seconds} second)"


def _interval_s(ctx: _Context, args: list[str] | None) -> str:
    return str(_interval_seconds(ctx))


def _no_args(fn: Callable[[_Context], str]) -> Callable[[_Context, list[str] | None], str]:
    # The plugin ignores arguments of argument-less macros: `$__fromTime()` is `$__fromTime`.
    return lambda ctx, _args: fn(ctx)


MACROS: dict[str, Callable[[_Context, list[str] | None], str]] = {
    "fromTime": _no_args(lambda c: _to_datetime(c.time_from)),
    "toTime": _no_args(lambda c: _to_datetime(c.time_to)),
    "fromTime_ms": _no_args(lambda c: _to_datetime64(c.time_from)),
    "toTime_ms": _no_args(lambda c: _to_datetime64(c.time_to)),
    "timeFilter": _time_filter,
    "timeFilter_ms": _time_filter_ms,
    "dateFilter": _date_filter,
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "timeFrom": _time_from,
    "timeTo": _time_to,
    "timeGroup": _time_group,
    "timeInterval": _time_interval,
    "timeInterval_ms": _time_interval_ms,
    "interval_s": _interval_s,
}
"""Backend macros by name (without ``$__``). ``conditionalAll`` is handled separately."""

SUPPORTED = frozenset(MACROS) | {"conditionalAll"}


def _parse_args(sql: str, pos: int, name: str) -> tuple[list[str] | None, int]:
    """Arguments of the macro whose name ends at ``pos``, and the position after them."""
    if pos >= len(sql) or sql[pos] != "(":
        return None, pos
    args: list[str] = []
    depth = 0
    current: list[str] = []
    for i in range(pos, len(sql)):
        ch = sql[i]
        if ch == "(":
            depth += 1
            if depth == 1:
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    raise ValueError(f"$__{name}: failed to parse macro arguments (missing close bracket?)")


def _conditional_all(args: list[str] | None, variables: Mapping[str, object]) -> str:
    # Frontend semantics (CHDatasource.applyConditionalAll): keep the condition unless the
    # template variable named in the 2nd argument is set to All ("$__all") or is empty.
    phrase, var_ref = _expect("conditionalAll", args, 2)
    m = _TEMPLATE_VAR.search(var_ref)
    if m:
        name = m.group(1) or m.group(2)
        if name in variables:
            value = variables[name]
            text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
            if text in ("", "$__all"):
                return "1=1"
    return phrase


def expand_macros(sql: str, time_from: datetime, time_to: datetime, interval_s: int = 60,
                  variables: Mapping[str, object] | None = None) -> str:
    """Return ``sql`` with every ``$__`` macro replaced as the ClickHouse plugin would.

    ``time_from`` / ``time_to`` are the dashboard time range (timezone-aware); ``interval_s`` is
    the query interval Grafana would compute for the panel. Raises :class:`ValueError` on an
    unknown macro, a wrong argument count or an unclosed argument list.
    """
    for t in (time_from, time_to):
        if t.tzinfo is None:
            raise ValueError("time range must be timezone-aware")
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    ctx = _Context(time_from, time_to, timedelta(seconds=interval_s))
    out: list[str] = []
    pos = 0
    for m in _NAME.finditer(sql):
        if m.start() < pos:
            continue  # inside the arguments of a macro already replaced
        name = m.group(1)
        if name not in SUPPORTED:
            raise ValueError(
                f"unknown macro $__{name} (supported: "
                f"{', '.join('$__' + n for n in sorted(SUPPORTED))})")
        args, end = _parse_args(sql, m.end(), name)
        if name == "conditionalAll":
            # The frontend pass runs first, so macros inside the kept condition still expand.
            inner = _conditional_all(args, variables or {})
            replacement = expand_macros(inner, time_from, time_to, interval_s, variables)
        else:
            replacement = MACROS[name](ctx, args)
        out.append(sql[pos:m.start()])
        out.append(replacement)
        pos = end
    out.append(sql[pos:])
    return "".join(out)

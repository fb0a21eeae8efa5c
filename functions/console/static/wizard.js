// The new-import wizard: a CSV file read in the browser (its header and
// first rows), each column mapped (a property with its type, an id with its
// id type, or ignored), the rows' update time (a column, one time for every
// row, or the time the import starts: the default) and time zone; a preview
// made by the importer's own code (POST /api/imports/preview); then the
// start (POST /api/imports), the file uploaded straight to the import
// bucket with the presigned form it answers, and the execution followed to
// its report.

import { ApiError, request } from "./api.js";
import { headOf, NotUtf8Error, readHead } from "./csv.js";
import { field, focus, h, notice, options, uid } from "./dom.js";
import { formatCount, idTypesOf, localDateTime, relativeTime, valueElement } from "./format.js";
import { connectionStatus, follow, pause, POLL_MS, readRetrying, reportElement, rowsWords, statusWords } from "./imports.js";

// The types of the import mapping (import_mapping.TYPES in the propsync
// package; tests/console/test_console_files.py keeps the two the same).
export const PROPERTY_TYPES = ["string", "long text", "number", "boolean", "date", "datetime", "list", "object"];

const TYPE_WORDS = {
  string: "string (text)",
  "long text": "long text",
  number: "number",
  boolean: "boolean (true/false, 1/0, yes/no)",
  date: "date (YYYY-MM-DD)",
  datetime: "date-time (UNIX seconds or ISO 8601)",
  list: "list (a JSON array)",
  object: "object (a JSON object)",
};

const DELIMITER_CHOICES = [
  ["", "Found from the header row"],
  [",", "Comma ( , )"],
  [";", "Semicolon ( ; )"],
  ["\t", "Tab"],
  ["|", "Vertical bar ( | )"],
];

const SHOWN_ROWS = 5;
const CONSTANT_TIME_COLUMN = "update time of every row";

function sizeWords(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** S3's error document as {Code, Message, ...the elements it adds (MaxSizeAllowed, …)}; {} if it is none. */
function s3Error(text) {
  try {
    const error = new DOMParser().parseFromString(text, "application/xml").querySelector("Error");
    return error ? Object.fromEntries([...error.children].map((child) => [child.tagName, child.textContent.trim()])) : {};
  } catch {
    return {};
  }
}

function bytesWords(count) {
  return `${formatCount(count)} ${Number(count) === 1 ? "byte" : "bytes"}`;
}

/**
 * Why the import bucket refused an upload, in words: S3's Code and Message
 * (the bucket's CORS rule lets this page read them), with what to do about
 * it. `maxBytes` is the start's own limit, for an answer that does not name it.
 */
export function uploadRefusal(status, text, maxBytes) {
  const error = s3Error(text);
  const said = error.Code ? `S3 said ${error.Code}${error.Message ? `: “${error.Message}”` : ""}` : `status ${status}`;
  let why;
  let retry = true;
  if (error.Code === "EntityTooLarge") {
    why = `the file is larger than the upload allows (at most ${bytesWords(error.MaxSizeAllowed || maxBytes)})`;
    retry = false;
  } else if (error.Code === "EntityTooSmall") {
    why = `the file is smaller than the upload allows (at least ${bytesWords(error.MinSizeAllowed || 1)})`;
    retry = false;
  } else if (error.Code === "AccessDenied" && /expired/i.test(error.Message || "")) {
    why = `the upload form has expired (${said})`;
  } else if (error.Code === "AccessDenied") {
    why = `the upload does not match the form the API gave (${said})`;
  } else {
    why = said;
  }
  const next = retry ? "The mapping is saved: start again to retry." : "The mapping is saved.";
  return `The import bucket refused the upload: ${why}. ${next}`;
}

// The API names the part of a request its refusal is about (file_name: …);
// api.sentence capitalizes the refusal as a sentence ("File_name: …"), so the
// page shows that name as a label in words ("File name: …"). The mapping's
// problems listed one by one keep the importer's paths (ids, properties[0]…).
const PART_LABELS = {
  file_name: "File name",
  import_name: "Import name",
  timezone: "Time zone",
  update_timestamp: "Update time",
  constant_columns: "Update time of every row",
};

/** "file_name: the file name …" (or "File_name: …", as api.sentence capitalizes it) -> "File name: the file name …". */
export function problemWords(text) {
  return String(text).replace(/^([A-Za-z][A-Za-z_]*): /, (whole, part) => {
    const key = part.toLowerCase();
    const label = PART_LABELS[key] || key.replace(/_/g, " ");
    return `${label[0].toUpperCase()}${label.slice(1)}: `;
  });
}

/** Why the importer would not take a file of this name (it reads *.csv and *.csv.gz, as named), or null. */
export function fileNameProblem(name) {
  if (/\.csv(\.gz)?$/.test(name)) return null;
  const rule = "The importer takes files named *.csv or *.csv.gz (in lower case)";
  const suffix = /\.csv(\.gz)?$/i.exec(name);
  if (suffix) {
    const renamed = name.slice(0, suffix.index) + suffix[0].toLowerCase();
    return `${rule}: rename ${name} to ${renamed}, then choose it again.`;
  }
  return `${rule}: rename ${name} so that its name ends in .csv (.csv.gz for a gzip file), then choose it again.`;
}

/** A head that is not UTF-8, in words: what the importer would do, and what to do about it. */
function notUtf8Words(name, line) {
  return (
    `${name} is not UTF-8 text (line ${line} is the first that is not: it is in another encoding, such as ` +
    `Latin-1 or Windows-1252, as some spreadsheets save CSV): the importer would reject its rows that ` +
    `are not UTF-8. Save it as UTF-8 (in Excel: Save As, “CSV UTF-8 (Comma delimited)”), then choose it again.`
  );
}

export function wizardPage(main, context) {
  const { session, signal } = context;
  const idTypes = idTypesOf(session);

  // ------------------------------------------------------------ 1. the file
  const fileInput = h("input", { type: "file", accept: ".csv,.gz,text/csv" });
  const importName = h("input", { name: "import_name", spellcheck: "false", autocomplete: "off" });
  const delimiter = h("select", { name: "delimiter" }, options(DELIMITER_CHOICES, ""));
  const fileStatus = h("div", { "aria-live": "polite" });
  const headView = h("div");
  let autoName = "";

  // ------------------------------------------------------------ 2. columns
  const columnsView = h("div");
  /** column name -> {use, property, type, idType} chosen so far (kept when the file is read again) */
  const choices = new Map();
  let columnControls = []; // [{column, use, property, type, idType, fieldset}]

  // ------------------------------------------------------------ 3. update time
  const timeName = uid("time");
  const timeStart = h("input", { type: "radio", name: timeName, value: "start", checked: true });
  const timeColumnRadio = h("input", { type: "radio", name: timeName, value: "column" });
  const timeConstantRadio = h("input", { type: "radio", name: timeName, value: "constant" });
  const timeColumn = h("select", { name: "update_timestamp_column" });
  const timeConstant = h("input", { name: "update_timestamp_constant", spellcheck: "false", autocomplete: "off", placeholder: "2026-01-31T08:00:00" });
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const zoneList = h("datalist", { id: uid("zones") }, options(["UTC", ...zones].map((z) => [z, z])));
  const timezone = h("input", { name: "timezone", value: "UTC", list: zoneList.id, spellcheck: "false", autocomplete: "off" });

  // ------------------------------------------------------------ 4, 5
  const previewButton = h("button", { type: "button", disabled: true }, "Preview the first rows");
  const previewView = h("div");
  const startButton = h("button", { type: "button", disabled: true }, "Start the import");
  const runView = h("div");

  const heading = h("h1", {}, "New import");
  const sections = [];
  function section(id, title, ...content) {
    const element = h("section", { id, "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, title), content);
    sections.push(element);
    return element;
  }

  const fileSection = section(
    "step-file",
    "1. The file",
    h("p", { class: "muted" }, "A CSV file with a header row (.csv, or .csv.gz). Its first rows are read here, in the browser; the file itself goes straight to the import bucket when the import starts."),
    field("CSV file", fileInput),
    h(
      "div",
      { class: "row" },
      field("Import name", importName, "Groups the files of one kind (e.g. crm): its mapping is saved with it. Not empty, no / or \\."),
      field("Delimiter", delimiter),
    ),
    fileStatus,
    headView,
  );
  const columnsSection = section(
    "step-columns",
    "2. Columns",
    h("p", { class: "muted" }, "For each column: write it to a customer property (with the type its cells are read as), use it as an id of the row's customer, or ignore it. At least one column must be an id."),
    columnsView,
  );
  const timeSection = section(
    "step-time",
    "3. Update time and time zone",
    h(
      "fieldset",
      { class: "mapping-column" },
      h("legend", {}, "Each row's update time"),
      h("p", { class: "hint" }, "A property is overwritten only by a newer update than the one it holds."),
      h("label", { class: "choice" }, timeStart, "The time the import starts (the default)"),
      h("label", { class: "choice" }, timeColumnRadio, "A column of the file"),
      h("div", { class: "choice-detail" }, field("Column with each row's update time", timeColumn)),
      h("label", { class: "choice" }, timeConstantRadio, "One time for every row (the time the file's data was taken)"),
      h(
        "div",
        { class: "choice-detail" },
        field("Update time of every row", timeConstant, "UNIX seconds, or a date-time like 2026-01-31T08:00:00 (read in the time zone below)."),
      ),
    ),
    field("Time zone", timezone, "The zone of dates and times without an offset: in the file's cells and above. An IANA name, e.g. UTC or Europe/Bratislava."),
    zoneList,
  );
  const previewSection = section(
    "step-preview",
    "4. Preview",
    h("p", { class: "muted" }, "The first rows of the file, as the importer will write them: the same checks, each row's error on its row."),
    h("div", { class: "buttons" }, previewButton),
    previewView,
  );
  const startSection = section(
    "step-start",
    "5. Start",
    h("p", { class: "muted" }, "The mapping is saved as the import's mapping.json, the file is uploaded to the import bucket, and the import runs; this page follows it to its report."),
    h("div", { class: "buttons" }, startButton),
    runView,
  );
  main.append(h("p", {}, h("a", { href: "#/imports" }, "← All imports")), heading, fileSection);
  for (const later of [columnsSection, timeSection, previewSection, startSection]) {
    later.hidden = true;
    main.append(later);
  }
  focus(heading);

  // ------------------------------------------------------------ the file's head
  let file = null;
  // the chosen file went to the bucket: its import runs whatever this page
  // does, so Start is never offered again for it (a second upload would
  // import it twice); choosing another file starts over
  let uploaded = false;
  // the browser could not send the chosen file (changed on disk since): only choosing it again mends that
  let mustChooseAgain = false;
  let head = null; // {bytes, whole}
  let parsed = null; // {delimiter, header, rows, sample}

  fileInput.addEventListener("change", async () => {
    file = fileInput.files && fileInput.files[0] ? fileInput.files[0] : null;
    uploaded = false;
    mustChooseAgain = false;
    // nothing of the file chosen before stays: its rows, columns, preview, run
    head = null;
    parsed = null;
    showSteps(false);
    for (const view of [fileStatus, headView, columnsView, previewView, runView]) view.replaceChildren();
    if (!file) return;
    const chosen = file;
    const nameProblem = fileNameProblem(chosen.name);
    if (nameProblem) {
      fileFailed(nameProblem);
      return;
    }
    const suggested = chosen.name.replace(/\.csv(\.gz)?$/, "");
    if (!importName.value || importName.value === autoName) {
      importName.value = suggested;
      autoName = suggested;
    }
    fileStatus.replaceChildren(h("p", { class: "muted" }, `Reading the first rows of ${chosen.name}…`));
    let read;
    try {
      read = await readHead(chosen);
    } catch (error) {
      if (file === chosen) fileFailed(error.message || `${chosen.name} cannot be read.`);
      return;
    }
    if (file !== chosen) return; // another file was chosen meanwhile
    head = read;
    readColumns();
  });

  function fileFailed(words) {
    head = null;
    parsed = null;
    showSteps(false);
    headView.replaceChildren();
    const box = notice("error", h("p", {}, words));
    fileStatus.replaceChildren(box);
    focus(box);
  }

  delimiter.addEventListener("change", () => {
    if (head) readColumns();
  });

  function showSteps(shown) {
    for (const later of [columnsSection, timeSection, previewSection, startSection]) later.hidden = !shown;
    previewButton.disabled = !shown || uploaded;
    startButton.disabled = !shown || uploaded || mustChooseAgain;
  }

  function readColumns() {
    try {
      parsed = headOf(head.bytes, head.whole, { delimiter: delimiter.value || null, rows: 20 });
    } catch (error) {
      if (!(error instanceof NotUtf8Error)) throw error;
      fileFailed(notUtf8Words(file.name, error.line));
      return;
    }
    if (!parsed.header) {
      fileFailed(`${file.name} has no header row: the first line must name the columns.`);
      return;
    }
    const columns = parsed.header.map((cell) => cell.trim()); // the importer trims header cells
    const delimiterWords = DELIMITER_CHOICES.find(([value]) => value === parsed.delimiter)[1].toLowerCase();
    fileStatus.replaceChildren(
      h(
        "p",
        { role: "status" },
        `${file.name}: ${sizeWords(file.size)}, ${columns.length} columns (delimiter: ${delimiterWords}).`,
      ),
    );
    const shown = parsed.rows.slice(0, SHOWN_ROWS);
    headView.replaceChildren(
      h(
        "div",
        { class: "scroll-x", role: "region", "aria-label": "The file's first rows", tabindex: "0" },
        h(
          "table",
          { class: "head" },
          h("caption", { class: "visually-hidden" }, `The header and first ${shown.length} rows of ${file.name}`),
          h("thead", {}, h("tr", {}, columns.map((column) => h("th", { scope: "col" }, column)))),
          h("tbody", {}, shown.map((cells) => h("tr", {}, columns.map((_, i) => h("td", {}, cells[i] ?? ""))))),
        ),
      ),
    );
    renderColumns(columns);
    showSteps(true);
  }

  function defaultChoice(column) {
    const idType = idTypes.find((type) => type.name.toLowerCase() === column.toLowerCase());
    if (idType) return { use: "id", property: column, type: "string", idType: idType.name };
    return { use: "property", property: column, type: "string", idType: (idTypes[0] || {}).name || "" };
  }

  function renderColumns(columns) {
    columnControls = columns.map((column) => {
      const choice = choices.get(column) || defaultChoice(column);
      choices.set(column, choice);
      const use = h(
        "select",
        {},
        options(
          [
            ["property", "a property"],
            ["id", "an id"],
            ["ignore", "nothing (ignore it)"],
          ],
          choice.use,
        ),
      );
      const property = h("input", { value: choice.property, spellcheck: "false", autocomplete: "off" });
      const type = h("select", {}, options(PROPERTY_TYPES.map((t) => [t, TYPE_WORDS[t] || t]), choice.type));
      const idType = h("select", {}, options(idTypes.map((t) => [t.name, `${t.name} (${t.kind})`]), choice.idType));
      const propertyField = field(`Property for “${column}”`, property);
      const typeField = field(`Type of “${column}”`, type);
      const idField = field(`Id type of “${column}”`, idType);
      const problem = h("div");
      const fieldset = h(
        "fieldset",
        { class: "mapping-column", dataset: { column } },
        h("legend", {}, `Column “${column}”`),
        h("div", { class: "row" }, field(`Use “${column}” as`, use), propertyField, typeField, idField),
        problem,
      );
      const sync = (event) => {
        if (event) {
          choice.touched = true; // the person's choice: the wizard no longer changes it
          choice.autoIgnored = false;
        }
        choice.use = use.value;
        choice.property = property.value;
        choice.type = type.value;
        choice.idType = idType.value;
        propertyField.hidden = typeField.hidden = use.value !== "property";
        idField.hidden = use.value !== "id";
      };
      for (const control of [use, property, type, idType]) control.addEventListener("change", sync);
      property.addEventListener("input", sync);
      sync();
      return { column, use, property, type, idType, fieldset, problem, sync: () => sync() };
    });
    columnsView.replaceChildren(...columnControls.map((c) => c.fieldset));
    const before = timeColumn.value;
    timeColumn.replaceChildren(...options(columns.map((c) => [c, c]), columns.includes(before) ? before : guessTimeColumn(columns)));
    ignoreTheTimeColumn();
  }

  /**
   * The update-time column holds times, not a property: when a column becomes
   * it while still at its default mapping (a string property of its name),
   * it is set to "ignore" (the person may still map it); a column the wizard
   * ignored so is given its default back when another becomes the time column.
   */
  function ignoreTheTimeColumn() {
    const timeColumnName = timeColumnRadio.checked ? timeColumn.value : null;
    for (const control of columnControls) {
      const choice = choices.get(control.column);
      if (!choice || choice.touched) continue;
      let use = null;
      if (control.column === timeColumnName && choice.use === "property") use = "ignore";
      else if (control.column !== timeColumnName && choice.autoIgnored) use = "property";
      if (use === null) continue;
      choice.autoIgnored = use === "ignore";
      control.use.value = use;
      control.sync();
    }
  }

  function guessTimeColumn(columns) {
    return columns.find((c) => /^(update_?timestamp|updated(_at)?|timestamp|last_update)$/i.test(c)) || columns[0];
  }

  timeColumn.addEventListener("change", () => {
    timeColumnRadio.checked = true;
    ignoreTheTimeColumn();
  });
  for (const radio of [timeStart, timeColumnRadio, timeConstantRadio]) radio.addEventListener("change", ignoreTheTimeColumn);
  timeConstant.addEventListener("input", () => {
    timeConstantRadio.checked = true;
    ignoreTheTimeColumn();
  });

  // ------------------------------------------------------------ the mapping
  /** {mapping, sources: path prefix -> what it is, for problems} */
  function buildMapping() {
    const mapping = { properties: [], ids: [], constant_columns: [], timezone: timezone.value.trim() };
    const sources = new Map();
    for (const control of columnControls) {
      if (control.use.value === "property") {
        sources.set(`properties[${mapping.properties.length}]`, control);
        mapping.properties.push({ from_column: control.column, to_property: control.property.value.trim(), type: control.type.value });
      } else if (control.use.value === "id") {
        sources.set(`ids[${mapping.ids.length}]`, control);
        mapping.ids.push({ from_column: control.column, to_id: control.idType.value });
      }
    }
    const mode = [timeStart, timeColumnRadio, timeConstantRadio].find((r) => r.checked).value;
    if (mode === "column") {
      mapping.update_timestamp = { from_column: timeColumn.value };
    } else if (mode === "constant") {
      let name = CONSTANT_TIME_COLUMN;
      for (let n = 2; parsed.header.map((c) => c.trim()).includes(name); n += 1) name = `${CONSTANT_TIME_COLUMN} ${n}`;
      mapping.constant_columns.push({ name, value: timeConstant.value.trim() });
      mapping.update_timestamp = { from_column: name };
    }
    if (delimiter.value) mapping.delimiter = delimiter.value;
    return { mapping, sources };
  }

  /** The importer's problems as a list, each with the column or setting it is about. */
  function problemsElement(intro, problems, sources) {
    for (const control of columnControls) {
      control.problem.replaceChildren();
      for (const input of [control.property, control.type, control.idType]) input.removeAttribute("aria-invalid");
    }
    for (const input of [timeColumn, timeConstant, timezone]) input.removeAttribute("aria-invalid");
    const items = problems.map((problem) => {
      const path = /^(properties|ids)\[\d+\]/.exec(problem);
      const control = path ? sources.get(path[0]) : null;
      if (control) {
        const what = problem.slice(path[0].length);
        const input = what.startsWith(".type") ? control.type : what.startsWith(".to_id") ? control.idType : control.property;
        input.setAttribute("aria-invalid", "true");
        control.problem.append(notice("error", h("p", {}, problem)));
        return h("li", {}, `Column “${control.column}”: ${problem}`);
      }
      if (problem.startsWith("timezone")) timezone.setAttribute("aria-invalid", "true");
      if (problem.startsWith("update_timestamp")) timeColumn.setAttribute("aria-invalid", "true");
      if (problem.startsWith("constant_columns")) timeConstant.setAttribute("aria-invalid", "true");
      return h("li", {}, problem); // the importer's sentence, its path as the mapping names it
    });
    return notice("error", h("p", {}, intro), h("ul", {}, items));
  }

  // ------------------------------------------------------------ 4. preview
  previewButton.addEventListener("click", async () => {
    if (!parsed) return;
    const { mapping, sources } = buildMapping();
    previewButton.disabled = true;
    previewView.replaceChildren(h("p", { class: "muted", role: "status" }, "Asking the importer…"));
    try {
      const answer = await request("POST", "api/imports/preview", {
        body: { mapping, sample: parsed.sample, file_name: file.name.replace(/\.gz$/i, "") },
        signal,
      });
      showPreview(answer, sources);
    } catch (error) {
      if (error.name === "AbortError" || context.onUnauthorized(error)) return;
      const box = error.problems && error.problems.length
        ? problemsElement(`The preview was refused. ${problemWords(error.message)}`, error.problems, sources)
        : notice("error", h("p", {}, `The preview was refused. ${problemWords(error.message)}`));
      previewView.replaceChildren(box);
      focus(box);
    } finally {
      previewButton.disabled = false;
    }
  });

  function showPreview(answer, sources) {
    const problems = Array.isArray(answer.problems) ? answer.problems : [];
    if (problems.length) {
      const box = problemsElement(
        "The importer would refuse this mapping, and import nothing: fix these first.",
        problems,
        sources,
      );
      previewView.replaceChildren(box);
      focus(box);
      return;
    }
    problemsElement("", [], sources); // clears the marks of an earlier preview
    const rows = answer.rows || [];
    const rejected = rows.filter((row) => row.error).length;
    const title = h("h3", { id: "preview-title" }, `The first ${rows.length} rows: ${rows.length - rejected} to write, ${rejected} rejected`);
    const table = h(
      "table",
      { class: "stack preview", "aria-labelledby": "preview-title" },
      h(
        "thead",
        {},
        h("tr", {}, ["Line", "Ids", "Properties", "Update time"].map((t) => h("th", { scope: "col" }, t))),
      ),
      h(
        "tbody",
        {},
        rows.map((row) =>
          row.error
            ? h(
                "tr",
                { class: "row-error", dataset: { line: String(row.line) } },
                h("td", { "data-label": "Line" }, String(row.line)),
                h("td", { "data-label": "Rejected", colspan: "3" }, h("strong", {}, "Rejected: "), row.error),
              )
            : h(
                "tr",
                { dataset: { line: String(row.line) } },
                h("td", { "data-label": "Line" }, String(row.line)),
                h("td", { "data-label": "Ids" }, pairs(row.ids)),
                h("td", { "data-label": "Properties" }, pairs(row.properties, true)),
                h(
                  "td",
                  { "data-label": "Update time" },
                  row.update_timestamp === null || row.update_timestamp === undefined
                    ? "–"
                    : [h("span", { class: "when" }, localDateTime(row.update_timestamp)), h("span", { class: "ago" }, relativeTime(row.update_timestamp))],
                ),
              ),
        ),
      ),
    );
    previewView.replaceChildren(title, h("div", { class: "table-wrap" }, table));
    focus(title);
  }

  function pairs(object, values = false) {
    if (!object) return "";
    return h(
      "ul",
      { class: "pairs" },
      Object.entries(object).map(([name, value]) =>
        h("li", {}, h("span", { class: "mono" }, name), ": ", values ? (value === null ? h("em", {}, "cleared") : valueElement(value)) : String(value)),
      ),
    );
  }

  // ------------------------------------------------------------ 5. start
  startButton.addEventListener("click", async () => {
    if (!parsed || !file) return;
    const name = importName.value.trim();
    importName.removeAttribute("aria-invalid");
    if (!name) {
      importName.setAttribute("aria-invalid", "true");
      const box = notice("error", h("p", {}, "Enter the import's name (e.g. crm)."));
      runView.replaceChildren(box);
      focus(importName);
      return;
    }
    const { mapping, sources } = buildMapping();
    startButton.disabled = true;
    previewButton.disabled = true;
    fileInput.disabled = true;
    const status = h("p", { role: "status" }, "Saving the mapping…");
    runView.replaceChildren(status);
    try {
      await run(name, mapping, sources, status);
    } catch (error) {
      if (error.name === "AbortError" || context.onUnauthorized(error)) return;
      if (uploaded) {
        // the API refused a read (a 4xx) after the upload: what was shown stays, the import runs on
        const box = notice("error", h("p", {}, `This page stopped following the import of ${file.name} (it runs on: the imports list shows it). ${error.message}`));
        runView.append(box);
        focus(box);
        return;
      }
      const box =
        error instanceof ApiError && error.problems.length
          ? problemsElement(`The import was not started. ${problemWords(error.message)}`, error.problems, sources)
          : notice("error", h("p", {}, problemWords(error.message)));
      runView.replaceChildren(box);
      focus(box);
    } finally {
      startButton.disabled = uploaded || mustChooseAgain;
      previewButton.disabled = uploaded;
      fileInput.disabled = false;
      // emptied, so that choosing the same file again is a change (a browser fires none otherwise)
      if (mustChooseAgain) fileInput.value = "";
    }
  });

  async function run(name, mapping, sources, status) {
    const started = await request("POST", "api/imports", {
      body: { import_name: name, file_name: file.name, mapping, header: parsed.header, size: file.size },
      signal,
    });
    const fileKey = started.file_key;
    // the newest execution of this file before the upload: the one the upload starts is the next
    const before = await request("GET", "api/imports", { query: { file_key: fileKey }, signal });
    const previous = (before.executions || [])[0];

    status.textContent = `Uploading ${file.name} (${sizeWords(file.size)}) to the import bucket…`;
    const form = new FormData();
    for (const [key, value] of Object.entries(started.upload.fields || {})) form.append(key, value);
    form.append("file", file); // last: S3 reads the fields before it
    let sent;
    try {
      sent = await fetch(started.upload.url, { method: "POST", body: form, mode: "cors", credentials: "omit", signal });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      // the browser says no more than "failed to fetch": the file changed on
      // disk since it was chosen (the browser refuses to send it then), or
      // the network failed; both are mended by choosing the file again
      mustChooseAgain = true;
      throw new Error(
        `The upload of ${file.name} failed before the import bucket answered: the file may have changed since it was chosen (it was saved again, or is still being written), or the network failed. Nothing was imported; the mapping is saved: choose the file again, then start again.`,
      );
    }
    if (!sent.ok) {
      throw new Error(uploadRefusal(sent.status, await sent.text().catch(() => ""), started.max_bytes));
    }

    uploaded = true;
    startButton.disabled = true;
    status.textContent = `Uploaded ${file.name}. Waiting for the import to start…`;
    // from here on the import runs on its own: a read that fails for a lost
    // connection is made again, never a reason to offer Start again
    const connection = connectionStatus(`${file.name} is uploaded and its import runs meanwhile; this page goes on following it.`);
    runView.append(connection.element);
    const retrying = { signal, lost: connection.lost, back: connection.back };
    let execution = null;
    for (let attempt = 0; !execution; attempt += 1) {
      const answer = await readRetrying(() => request("GET", "api/imports", { query: { file_key: fileKey }, signal }), retrying);
      const newest = (answer.executions || [])[0];
      if (newest && (!previous || newest.execution_id !== previous.execution_id)) execution = newest;
      else {
        if (attempt === 30) status.textContent = `Uploaded ${file.name}. The import has not started yet; this page keeps waiting for it.`;
        await pause(POLL_MS, signal);
      }
    }

    const title = h("h3", { id: "run-title" }, `Importing ${file.name}`);
    const body = h("div", { "aria-live": "polite" });
    runView.replaceChildren(title, connection.element, body);
    const detail = await follow(
      execution.execution_id,
      (current) => body.replaceChildren(reportElement(current)),
      signal,
      connection,
    );
    title.textContent = `Import finished: ${statusWords(detail.execution.status)}`;
    body.append(
      h(
        "p",
        {},
        h("a", { href: `#/imports/${encodeURIComponent(detail.execution.execution_id)}` }, "Open this report on its own page"),
        ` · ${rowsWords((detail.execution.counts || {}).rows_written)} written.`,
      ),
    );
    focus(title);
  }
}

// The customer page: find a customer by an id (any id type of the project)
// or by its internal id; its ids; its properties with their last update;
// inline edit, add and delete through PATCH /api/customers/{id}, each stamped
// by the server and merged by the newer-wins rule, so an edit can lose to a
// newer value (a source whose clock is ahead): the row then says so.

import { ApiError, PathSegmentError, pathSegment, request } from "./api.js";
import { field, focus, h, notice, options } from "./dom.js";
import {
  browserTimeZone,
  idTypesOf,
  localDateTime,
  relativeTime,
  storedText,
  updateTime,
  valueAsInput,
  valueElement,
  valueKind,
  visibleText,
} from "./format.js";

const INTERNAL = "__internal__";
const SET = "customer_properties:set";

const KINDS = [
  ["text", "Text"],
  ["number", "Number"],
  ["boolean", "True or false"],
  ["json", "JSON (list, object, …)"],
];

const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

/** The JSON text of a typed value, or throws an Error whose message is the sentence to show. */
export function jsonValue(kind, text) {
  if (kind === "text") return JSON.stringify(text);
  const trimmed = text.trim();
  if (kind === "number") {
    if (!NUMBER.test(trimmed)) throw new Error(`“${text}” is not a number: write digits, e.g. 42, -7 or 3.25.`);
    return trimmed; // sent as typed: the API stores numbers digit for digit
  }
  if (kind === "boolean") {
    const word = trimmed.toLowerCase();
    if (word !== "true" && word !== "false") throw new Error(`“${text}” is not true or false.`);
    return word;
  }
  if (trimmed === "null") throw new Error("null would delete the property: use its Delete button instead.");
  try {
    JSON.parse(trimmed);
  } catch {
    throw new Error("This is not valid JSON: write a list like [1, 2], an object like {\"a\": 1}, a number, text in quotes, true or false.");
  }
  return trimmed;
}

function narrow(fieldElement) {
  fieldElement.classList.add("field-narrow");
  return fieldElement;
}

/** "registered “jane”" as nodes: the id as the page shows every stored string. */
function describeLookup(lookup) {
  return lookup.internal
    ? ["internal id ", storedText(lookup.value, { className: "mono" })]
    : [`${lookup.idType} “`, storedText(lookup.value), "”"];
}

export function customersPage(main, context) {
  const { session, can, signal } = context;
  const canEdit = can(SET);
  const idTypes = idTypesOf(session);

  const by = h(
    "select",
    { name: "by" },
    options([
      ...idTypes.map((type) => [type.name, `${type.name} (${type.kind} id)`]),
      [INTERNAL, "internal customer id"],
    ]),
  );
  const value = h("input", { name: "value", required: true, spellcheck: "false", autocomplete: "off" });
  const findButton = h("button", { type: "submit" }, "Find");
  const form = h(
    "form",
    { class: "panel", novalidate: true, "aria-labelledby": "find-title", role: "search" },
    h("h2", { id: "find-title", class: "visually-hidden" }, "Find a customer"),
    h(
      "div",
      { class: "row" },
      narrow(field("Find by", by)),
      field("Id value", value),
      h("div", { class: "field field-button" }, findButton),
    ),
    h("p", { class: "hint", id: "find-hint" }, "An id of the customer (its registered id, a cookie, …) with its id type, or its internal customer id."),
  );
  value.setAttribute("aria-describedby", "find-hint");
  const result = h("section", { "aria-live": "polite" });
  const heading = h("h1", {}, "Customers");
  main.append(
    heading,
    h("p", { class: "muted" }, `Times are shown in your browser's time zone (${browserTimeZone()}).`),
    form,
    result,
  );

  /** The customer on the page: how it was found, its properties (with last_update), notes per row. */
  let shown = null;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    // the value as typed: an id may begin or end with spaces (" spaced " is
    // a cookie of its own), so only an empty one is refused
    const text = value.value;
    value.removeAttribute("aria-invalid");
    if (!text) {
      value.setAttribute("aria-invalid", "true");
      const box = notice("error", h("p", {}, "Enter the id value to look for."));
      result.replaceChildren(box);
      focus(value);
      return;
    }
    const lookup = by.value === INTERNAL ? { internal: true, value: text } : { idType: by.value, value: text };
    findButton.disabled = true;
    result.replaceChildren(h("p", { class: "muted", role: "status" }, "Looking for ", describeLookup(lookup), "…"));
    try {
      await find(lookup);
    } finally {
      findButton.disabled = false;
    }
  });

  function customerPath(lookup) {
    return `api/customers/${pathSegment(lookup.value)}`;
  }

  function lookupQuery(lookup) {
    return lookup.internal ? {} : { id_type: lookup.idType };
  }

  /** The customer as the page shows it: one GET, its properties with their last update and its ids. */
  function read(lookup) {
    return request("GET", customerPath(lookup), {
      query: { include_timestamps: 1, include_ids: 1, ...lookupQuery(lookup) },
      signal,
    });
  }

  async function find(lookup) {
    try {
      const customer = await read(lookup);
      shown = {
        lookup,
        // the internal id the API read (a customer merged away reads as the
        // one it was merged into), however it was looked for
        customerId: customer.customer_id || (lookup.internal ? lookup.value : null),
        ids: customer.ids || {},
        properties: customer.properties || {},
        notes: {},
      };
      render({ focusHeading: true });
    } catch (error) {
      if (error.name === "AbortError") return;
      if (context.onUnauthorized(error)) return;
      shown = null;
      let text = `The customer could not be read. ${error.message}`;
      if (error instanceof ApiError && error.status === 404) {
        text = ["No customer of this project has the ", describeLookup(lookup), "."];
      } else if (error instanceof PathSegmentError) {
        text = `The customer cannot be looked up by this id here. ${error.message} Look it up by another of its ids or by its internal id.`;
      }
      const box = notice("error", h("p", {}, text));
      result.replaceChildren(box);
      focus(box);
    }
  }

  function render({ focusHeading = false, focusNoteOf = null, focusElement = null } = {}) {
    const title = h("h2", { id: "customer-title" }, "Customer with ", describeLookup(shown.lookup));
    const facts = h("dl", { class: "facts" });
    if (shown.customerId) facts.append(h("dt", {}, "Internal id"), h("dd", { class: "mono" }, storedText(shown.customerId)));
    const ids = Object.entries(shown.ids).sort(([a], [b]) => a.localeCompare(b));
    for (const [type, values] of ids) {
      const list = Array.isArray(values) ? values : [values];
      const shownValues = list.flatMap((item, index) => (index ? [", ", storedText(item)] : [storedText(item)]));
      facts.append(h("dt", {}, storedText(type)), h("dd", { class: "mono" }, shownValues));
    }
    const names = Object.keys(shown.properties).sort((a, b) => a.localeCompare(b));
    const children = [title, h("h3", {}, "Ids"), facts];
    if (!ids.length) children.push(h("p", { class: "muted" }, "This customer has no external ids."));
    children.push(h("h3", { id: "properties-title" }, "Properties"));
    if (!canEdit) {
      children.push(h("p", { class: "muted" }, `This key can read but not edit customers (it lacks ${SET}).`));
    }
    if (names.length) {
      children.push(propertiesTable(names));
    } else {
      children.push(h("p", { class: "muted" }, "This customer has no properties."));
    }
    if (shown.notes[""]) children.push(noteElement(shown.notes[""], ""));
    if (canEdit) children.push(addForm());
    result.replaceChildren(...children);
    if (focusHeading) focus(title);
    else if (focusNoteOf !== null) focus(result.querySelector(`[data-note-for="${CSS.escape(focusNoteOf)}"]`) || title);
    else if (focusElement) focus(focusElement());
  }

  function noteElement(note, name) {
    return h(
      "span",
      { class: `row-note row-note-${note.kind}`, role: note.kind === "error" ? "alert" : "status", tabindex: "-1", dataset: { noteFor: name } },
      note.content,
    );
  }

  function propertiesTable(names) {
    const head = h(
      "tr",
      {},
      h("th", { scope: "col" }, "Property"),
      h("th", { scope: "col" }, "Value"),
      h("th", { scope: "col" }, "Last update"),
      canEdit ? h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")) : null,
    );
    const rows = names.map((name) => propertyRow(name));
    return h(
      "div",
      { class: "table-wrap" },
      h("table", { class: "stack properties", "aria-labelledby": "properties-title" }, h("thead", {}, head), h("tbody", {}, rows)),
    );
  }

  function propertyRow(name) {
    const property = shown.properties[name];
    const note = shown.notes[name];
    const label = visibleText(name); // for aria-labels: the name with its invisible characters written out
    const valueCell = h("td", { "data-label": "Value", class: "value-cell" }, valueElement(property.value), note ? noteElement(note, name) : null);
    const row = h(
      "tr",
      { dataset: { property: name } },
      h("th", { scope: "row", "data-label": "Property", class: "mono name-cell" }, storedText(name, { className: "name" })),
      valueCell,
      h("td", { "data-label": "Last update", class: "time-cell" }, updateTime(property.last_update)),
    );
    if (canEdit) {
      const actions = h("td", { "data-label": "Actions", class: "actions" });
      const showButtons = () => {
        const edit = h("button", { type: "button", class: "button-quiet", "aria-label": `Edit ${label}`, onclick: () => startEdit() }, "Edit");
        const remove = h("button", { type: "button", class: "button-danger", "aria-label": `Delete ${label}`, onclick: () => confirmDelete() }, "Delete");
        actions.replaceChildren(h("div", { class: "buttons" }, edit, remove));
        return edit;
      };
      const startEdit = () => {
        const kind = h("select", {}, options(KINDS, valueKind(property.value)));
        const input = h("input", { value: valueAsInput(property.value), spellcheck: "false", autocomplete: "off" });
        const problem = h("div");
        const editForm = h(
          "form",
          { novalidate: true, "aria-label": `Edit ${label}` },
          field(["Type of ", storedText(name)], kind),
          field(["New value of ", storedText(name)], input),
          problem,
          h(
            "div",
            { class: "buttons" },
            h("button", { type: "submit" }, "Save"),
            h("button", { type: "button", class: "button-quiet", onclick: () => cancel() }, "Cancel"),
          ),
        );
        const cancel = () => {
          valueCell.replaceChildren(valueElement(property.value), note ? noteElement(note, name) : null);
          focus(showButtons());
        };
        editForm.addEventListener("keydown", (event) => {
          if (event.key === "Escape") {
            event.preventDefault();
            cancel();
          }
        });
        editForm.addEventListener("submit", async (event) => {
          event.preventDefault();
          let json;
          try {
            json = jsonValue(kind.value, input.value);
          } catch (error) {
            input.setAttribute("aria-invalid", "true");
            problem.replaceChildren(notice("error", h("p", {}, error.message)));
            focus(input);
            return;
          }
          for (const button of editForm.querySelectorAll("button")) button.disabled = true;
          await save(name, json, { deleting: false, refused: refusedIn(editForm, problem) });
        });
        valueCell.replaceChildren(editForm);
        actions.replaceChildren();
        focus(input);
        input.select();
      };
      const confirmDelete = () => {
        const keep = h("button", { type: "button", class: "button-quiet", onclick: () => focus(showButtons()) }, "Keep it");
        const sure = h(
          "button",
          {
            type: "button",
            class: "button-danger-strong",
            onclick: async () => {
              sure.disabled = true;
              keep.disabled = true;
              await save(name, "null", { deleting: true });
            },
          },
          "Delete",
        );
        sure.setAttribute("aria-label", `Delete ${label}`);
        const box = h(
          "div",
          { role: "group", "aria-label": `Delete ${label}?` },
          h("p", {}, "Delete ", storedText(name), "?"),
          h("div", { class: "buttons" }, sure, keep),
        );
        box.addEventListener("keydown", (event) => {
          if (event.key === "Escape") {
            event.preventDefault();
            focus(showButtons());
          }
        });
        actions.replaceChildren(box);
        focus(sure);
      };
      showButtons();
      row.append(actions);
    }
    return row;
  }

  function addForm() {
    const name = h("input", { name: "property", spellcheck: "false", autocomplete: "off", required: true });
    const kind = h("select", { name: "kind" }, options(KINDS, "text"));
    const input = h("input", { name: "value", spellcheck: "false", autocomplete: "off" });
    const problem = h("div");
    const form = h(
      "form",
      { class: "panel", novalidate: true, "aria-labelledby": "add-title" },
      h("h3", { id: "add-title" }, "Add a property"),
      h("p", { class: "hint" }, "The server stamps it with the time it receives the change; a property of that name is overwritten unless a newer value is stored."),
      h(
        "div",
        { class: "row" },
        field("Property name", name),
        narrow(field("Type", kind)),
        field("Value", input),
      ),
      problem,
      h("div", { class: "buttons" }, h("button", { type: "submit" }, "Add property")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const property = name.value.trim();
      for (const control of [name, input]) control.removeAttribute("aria-invalid");
      let json;
      try {
        if (!property) {
          name.setAttribute("aria-invalid", "true");
          throw Object.assign(new Error("Enter the property's name."), { control: name });
        }
        json = jsonValue(kind.value, input.value);
      } catch (error) {
        const control = error.control || input;
        control.setAttribute("aria-invalid", "true");
        problem.replaceChildren(notice("error", h("p", {}, error.message)));
        focus(control);
        return;
      }
      for (const button of form.querySelectorAll("button")) button.disabled = true;
      await save(property, json, { deleting: false, adding: true, refused: refusedIn(form, problem) });
    });
    return form;
  }

  /**
   * What a form does when the API refuses its change: it stays as it was
   * typed (open, its inputs kept), the API's sentence beside it, so the one
   * who typed can correct it instead of typing it again.
   */
  function refusedIn(form, problem) {
    return (sentence) => {
      const box = notice("error", h("p", {}, sentence));
      problem.replaceChildren(box);
      for (const button of form.querySelectorAll("button")) button.disabled = false;
      focus(box);
    };
  }

  async function save(name, json, { deleting, adding = false, refused = null }) {
    const lookup = shown.lookup;
    const body = `{"properties": {${JSON.stringify(name)}: ${json}}}`;
    let answer;
    try {
      answer = await request("PATCH", customerPath(lookup), { query: lookupQuery(lookup), jsonBody: body, signal });
    } catch (error) {
      if (error.name === "AbortError") return;
      if (context.onUnauthorized(error)) return;
      const what = [storedText(name), deleting ? " was not deleted." : " was not saved."];
      const text =
        error instanceof ApiError && error.status === 404
          ? [what, " The customer no longer exists (it may have been erased)."]
          : [what, ` ${error.message}`];
      if (refused) {
        refused(text);
        return;
      }
      shown.notes = { [adding || !(name in shown.properties) ? "" : name]: { kind: "error", content: text } };
      render({ focusNoteOf: adding || !(name in shown.properties) ? "" : name });
      return;
    }
    if (answer.customer_id) shown.customerId = answer.customer_id;
    if (answer.properties) {
      shown.properties = answer.properties;
    } else {
      try {
        const customer = await read(lookup);
        shown.properties = customer.properties || {};
        shown.ids = customer.ids || {};
        if (customer.customer_id) shown.customerId = customer.customer_id;
      } catch {
        // the edit's own answer is what matters; the table keeps what it had
      }
    }
    const stale = Array.isArray(answer.stale) && answer.stale.includes(name);
    const kept = shown.properties[name];
    shown.notes = {};
    if (stale) {
      const content = [
        h("strong", {}, deleting ? "Not deleted: a newer value won. " : "Not saved: a newer value won. "),
        kept
          ? [
              "The customer keeps ",
              valueElement(kept.value),
              Number(kept.last_update) === -1
                ? ""
                : `, updated ${localDateTime(kept.last_update)} (${relativeTime(kept.last_update)}), after your change arrived.`,
            ]
          : "The property was deleted by a newer change.",
      ];
      if (kept) shown.notes[name] = { kind: "warn", content };
      else shown.notes[""] = { kind: "warn", content: [storedText(name), ": ", ...content] };
      render({ focusNoteOf: kept ? name : "" });
    } else if (deleting) {
      shown.notes[""] = { kind: "ok", content: ["Deleted ", storedText(name), "."] };
      render({ focusNoteOf: "" });
    } else if (kept) {
      const stamped =
        Number(kept.last_update) === -1 ? "" : ` Stamped by the server: ${localDateTime(kept.last_update)}.`;
      shown.notes[name] = { kind: "ok", content: `${adding ? "Added" : "Saved"}.${stamped}` };
      render({ focusNoteOf: name });
    } else {
      shown.notes[""] = { kind: "ok", content: [storedText(name), " was saved."] };
      render({ focusNoteOf: "" });
    }
  }

  focus(value);
  return heading;
}

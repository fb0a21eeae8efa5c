// Small DOM helpers: elements are built with h() and text is always set as
// text (never as HTML), so nothing the API or a file says can become markup.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name === "value" && "value" in element) {
      element.value = value;
    } else if (name === "checked" || name === "selected" || name === "disabled") {
      element[name] = Boolean(value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

let counter = 0;

/** A unique id for label/for and aria-describedby pairs. */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A labelled field: <div class=field><label for=id>..</label>control hint</div>. */
export function field(label, control, hint) {
  const id = control.id || uid("field");
  control.id = id;
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("span", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

/** Options for a <select>: [value, text] pairs. */
export function options(pairs, selected) {
  return pairs.map(([value, text]) => h("option", { value, selected: value === selected }, text));
}

/**
 * A notice box: kind is "error", "ok" or "warn". Errors are role=alert; the
 * box can take focus, so that the one who acted is taken to what happened.
 */
export function notice(kind, ...content) {
  return h(
    "div",
    { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status", tabindex: "-1" },
    content,
  );
}

/** Move focus to an element (which takes it: tabindex=-1 where needed). */
export function focus(element) {
  if (!element) return;
  if (!element.hasAttribute("tabindex") && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(element.tagName)) {
    element.setAttribute("tabindex", "-1");
  }
  element.focus();
}

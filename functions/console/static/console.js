// propsync console: sign-in, the sections a key's permissions allow, and a
// hash router (#/customers, #/imports, #/imports/new, #/imports/<id>), so
// that every place has a link, and Back works.
//
// Plain ES modules served by the stack itself: no framework, no build step,
// nothing from the internet (docs/DECISIONS.md: "The web console: plain
// modules, no build").

import { ApiError, forgetKey, request, storeKey, storedKey } from "./api.js";
import { customersPage } from "./customers.js";
import { field, focus, h, notice } from "./dom.js";
import { refreshRelativeTimes } from "./format.js";
import { importReportPage, importsPage } from "./imports.js";
import { wizardPage } from "./wizard.js";

export const PERMISSIONS = {
  get: "customer_properties:get",
  set: "customer_properties:set",
  import: "customers:import",
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const whoText = document.getElementById("who-text");

/** The signed-in key as GET /api/key describes it, and what it may do. */
let session = null;
/** Aborted when the page changes: stops the old page's requests and polling. */
let pageLife = new AbortController();

function can(permission) {
  return Boolean(session && session.permissions.includes(permission));
}

function showChrome() {
  const signedIn = Boolean(session);
  nav.hidden = !signedIn;
  who.hidden = !signedIn;
  document.getElementById("nav-customers").hidden = !can(PERMISSIONS.get);
  document.getElementById("nav-imports").hidden = !can(PERMISSIONS.import);
  if (signedIn) whoText.textContent = `Key ${session.key_id} · project ${session.project}`;
}

function markCurrent(section) {
  for (const link of nav.querySelectorAll("a")) {
    if (link.id === `nav-${section}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function newPage(title) {
  pageLife.abort();
  pageLife = new AbortController();
  document.title = `${title} · propsync console`;
  main.replaceChildren();
  return pageLife.signal;
}

// ------------------------------------------------------------------ sign-in

function signInPage(message) {
  newPage("Sign in");
  markCurrent(null);
  const keyId = h("input", { name: "key_id", autocomplete: "username", required: true, spellcheck: "false" });
  const secret = h("input", { name: "secret", type: "password", autocomplete: "current-password", required: true });
  const status = h("div", { class: "sign-in-status" });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "panel sign-in", novalidate: true, "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h(
      "p",
      { class: "muted" },
      "With an API key of your project (propsync create-key). It is kept in this tab only, and forgotten when the tab closes or you sign out.",
    ),
    field("API key id", keyId),
    field("API secret", secret),
    status,
    h("div", { class: "buttons" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = keyId.value.trim();
    const problems = [];
    if (!id) problems.push([keyId, "Enter the API key id."]);
    else if (id.includes(":")) problems.push([keyId, "An API key id cannot contain “:”."]);
    if (!secret.value) problems.push([secret, "Enter the API secret."]);
    for (const input of [keyId, secret]) input.removeAttribute("aria-invalid");
    if (problems.length) {
      for (const [input] of problems) input.setAttribute("aria-invalid", "true");
      const box = notice("error", problems.map(([, text]) => h("p", {}, text)));
      status.replaceChildren(box);
      focus(problems[0][0]);
      return;
    }
    submit.disabled = true;
    status.replaceChildren(h("p", { class: "muted", role: "status" }, "Signing in…"));
    try {
      const key = { keyId: id, secret: secret.value };
      session = await request("GET", "api/key", { key });
      storeKey(key.keyId, key.secret);
      showChrome();
      go(defaultRoute(), { replace: true });
    } catch (error) {
      submit.disabled = false;
      const box = notice("error", h("p", {}, signInFailure(error)));
      status.replaceChildren(box);
      focus(box);
    }
  });
  main.append(form);
  if (message) {
    const box = notice(message.kind || "error", h("p", {}, message.text));
    form.insertBefore(box, status);
  }
  focus(keyId);
}

function signInFailure(error) {
  if (!(error instanceof ApiError)) return "Signing in failed unexpectedly; reload the page and try again.";
  if (error.status === 401 || error.status === 403) {
    return `Sign-in failed: the key id or the secret is wrong. The API said: “${error.message}”`;
  }
  return `Sign-in failed. ${error.message}`;
}

function signOut(text = "You are signed out. The key was removed from this tab.") {
  forgetKey();
  session = null;
  showChrome();
  history.replaceState(null, "", "#/sign-in");
  signInPage({ kind: "ok", text });
}

// ------------------------------------------------------------------ routing

function defaultRoute() {
  if (can(PERMISSIONS.get)) return "#/customers";
  if (can(PERMISSIONS.import)) return "#/imports";
  return "#/nothing";
}

function go(hash, { replace = false } = {}) {
  if (location.hash === hash) route();
  else if (replace) {
    history.replaceState(null, "", hash);
    route();
  } else location.hash = hash;
}

function nothingPage() {
  newPage("Nothing to show");
  markCurrent(null);
  const heading = h("h1", {}, "Nothing this key can do here");
  // what is true of this key: set alone lets scripts edit, but the console
  // shows customers only to a key that may read them
  const why = can(PERMISSIONS.set)
    ? `Key ${session.key_id} may edit customers (${PERMISSIONS.set}) but not read them: the console shows customers only to keys with ${PERMISSIONS.get}, and needs it to show what it edits. With ${PERMISSIONS.set} alone, scripts can edit customers through the API (PATCH /api/customers/…).`
    : `Key ${session.key_id} has none of the permissions the console uses: ${PERMISSIONS.get} (find and read customers), ${PERMISSIONS.set} (edit them, together with ${PERMISSIONS.get}) or ${PERMISSIONS.import} (imports).`;
  main.append(
    heading,
    h("p", {}, why),
    h("p", {}, "An administrator can create a key with the permissions it needs (propsync create-key)."),
  );
  focus(heading);
}

function noSuchPage(hash) {
  newPage("No such page");
  markCurrent(null);
  const heading = h("h1", {}, "No such page");
  main.append(
    heading,
    h("p", {}, `The address “${hash}” names no page of the console: it has a % that does not start a valid escape (such as %20).`),
    h("p", {}, h("a", { href: defaultRoute() }, "Go to the console's start page")),
  );
  focus(heading);
}

function notAllowedPage(what, permission) {
  newPage("Not allowed");
  markCurrent(null);
  const heading = h("h1", {}, `${what}: not for this key`);
  main.append(heading, h("p", {}, `This needs the ${permission} permission, which key ${session.key_id} does not have.`));
  focus(heading);
}

function route() {
  if (!session) {
    signInPage();
    return;
  }
  const hash = location.hash || defaultRoute();
  let parts;
  try {
    parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  } catch {
    // a malformed escape (#/imports/%E0%A4%A): decodeURIComponent throws
    // "URI malformed"; the page says so instead of keeping the old page
    return noSuchPage(hash);
  }
  const context = { session, can, signal: null, onUnauthorized };
  if (parts[0] === "customers" || parts[0] === "") {
    if (!can(PERMISSIONS.get)) return notAllowedPage("Customers", PERMISSIONS.get);
    context.signal = newPage("Customers");
    markCurrent("customers");
    customersPage(main, context);
  } else if (parts[0] === "imports") {
    if (!can(PERMISSIONS.import)) return notAllowedPage("Imports", PERMISSIONS.import);
    markCurrent("imports");
    if (parts[1] === "new") {
      context.signal = newPage("New import");
      wizardPage(main, context);
    } else if (parts[1]) {
      context.signal = newPage("Import report");
      importReportPage(main, context, parts[1]);
    } else {
      context.signal = newPage("Imports");
      importsPage(main, context);
    }
  } else if (parts[0] === "nothing") {
    nothingPage();
  } else {
    go(defaultRoute(), { replace: true });
  }
}

/** A page's call was refused 401/403 at the key itself: the key was revoked or changed. */
function onUnauthorized(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut(`The API no longer accepts this key (${error.message}) Sign in again.`);
    return true;
  }
  return false;
}

// ------------------------------------------------------------------ start

function listen() {
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", () => route());
  // the skip link moves focus without changing the address (the router's)
  document.querySelector(".skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    focus(main.querySelector("h1") || main);
  });
  setInterval(() => refreshRelativeTimes(main), 30000);
}

async function start() {
  const key = storedKey();
  if (!key) {
    signInPage();
    return;
  }
  try {
    session = await request("GET", "api/key", { key });
    showChrome();
    route();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      forgetKey();
      signInPage({ text: `The key of this tab is no longer accepted: ${error.message} Sign in again.` });
      return;
    }
    newPage("Cannot reach the API");
    const retry = h("button", { type: "button", onclick: () => start() }, "Try again");
    const box = notice("error", h("p", {}, error instanceof ApiError ? error.message : String(error)));
    main.append(h("h1", {}, "The console cannot start"), box, retry);
    focus(box);
  }
}

listen();
start().catch((error) => {
  main.replaceChildren(
    notice("error", h("p", {}, `The console failed to start: ${error && error.message ? error.message : error}. Reload the page.`)),
  );
});

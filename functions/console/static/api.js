// The API, as the console calls it: Basic auth with the key kept in this
// tab's session storage, JSON in and out, and every failure turned into a
// sentence a person can read (never a raw JSON dump, never a blank page).

const STORAGE_KEY = "propsync-console-key";

/** The signed-in key {keyId, secret}, or null. Session storage: this tab only, gone when it closes. */
export function storedKey() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    return stored && typeof stored.keyId === "string" && typeof stored.secret === "string" ? stored : null;
  } catch {
    return null;
  }
}

export function storeKey(keyId, secret) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ keyId, secret }));
}

export function forgetKey() {
  sessionStorage.removeItem(STORAGE_KEY);
}

export class ApiError extends Error {
  constructor(message, { status = 0, problems = [], body = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.problems = Array.isArray(problems) ? problems.filter((p) => typeof p === "string") : [];
    this.body = body;
  }

  get networkFailure() {
    return this.status === 0;
  }
}

/** A number the API sent whose digits a JavaScript number would change (0.1000000000000000055511151231257827). */
export class RawNumber {
  constructor(text) {
    this.text = text;
  }

  toString() {
    return this.text;
  }

  valueOf() {
    return Number(this.text);
  }
}

/**
 * JSON.parse, keeping the exact text of numbers a double cannot hold (the
 * API answers numbers digit for digit, as they were stored). Browsers
 * without the reviver's source text get plain numbers.
 */
export function parseJson(text) {
  return JSON.parse(text, (_key, value, context) => {
    if (typeof value === "number" && context && typeof context.source === "string") {
      if (String(value) !== context.source) return new RawNumber(context.source);
    }
    return value;
  });
}

/** JSON text of a value parsed by parseJson, its raw numbers as they came. */
export function jsonText(value) {
  if (value instanceof RawNumber) return value.text;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(", ")}]`;
  if (value && typeof value === "object") {
    return `{${Object.entries(value)
      .map(([key, item]) => `${JSON.stringify(key)}: ${jsonText(item)}`)
      .join(", ")}}`;
  }
  return JSON.stringify(value);
}

function basicAuthorization(keyId, secret) {
  // UTF-8, as the authorizer decodes it (btoa alone takes Latin-1 only)
  const bytes = new TextEncoder().encode(`${keyId}:${secret}`);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

export class PathSegmentError extends Error {
  constructor(message) {
    super(message);
    this.name = "PathSegmentError";
  }
}

/**
 * One path segment of a route, for any value a person typed or the API
 * stored (an id " spaced ", "a/b", "50%", "?"): every character but the
 * unreserved ones percent-encoded. A whole segment "." or ".."
 * cannot be sent at all: browsers resolve it, %2E-encoded too (the URL
 * standard treats "%2E%2E" as ".."), so /api/customers/.. would ask for
 * /api/. Such a value throws a PathSegmentError whose message says so,
 * instead of asking for another route.
 */
export function pathSegment(value) {
  const text = String(value);
  if (text === "." || text === "..") {
    throw new PathSegmentError(
      `A browser cannot send “${text}” as a part of an address: it reads “.” and “..” there as ` +
        "“this folder” and “the folder above”, even when written %2E.",
    );
  }
  return encodeURIComponent(text);
}

/** A route's URL, relative to the page: /console -> /api/..., /v1/console -> /v1/api/... */
export function apiUrl(path, query = {}) {
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  return url;
}

/** "invalid secret" -> "Invalid secret." */
export function sentence(text) {
  const trimmed = String(text).trim();
  if (!trimmed) return trimmed;
  const first = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?:)]$/.test(first) ? first : `${first}.`;
}

const STATUS_WORDS = {
  400: "The API refused the request",
  401: "The API did not accept the key",
  403: "This key may not do that",
  404: "Not found",
  413: "The request is too large",
  429: "Too many requests: wait a moment and try again",
};

/** The sentence for a failed answer: the API's own words where it gave them. */
export function errorSentence(status, body) {
  if (body && typeof body === "object") {
    if (typeof body.error === "string" && body.error) return sentence(body.error);
    if (Array.isArray(body.errors) && body.errors.length) return body.errors.map(sentence).join(" ");
    if (typeof body.message === "string" && body.message) {
      return sentence(`The API failed (status ${status}): ${body.message}`);
    }
  }
  if (status >= 500) return `The server failed (status ${status}); try again in a moment.`;
  return sentence(`${STATUS_WORDS[status] || "The API refused the request"} (status ${status})`);
}

export const NETWORK_FAILURE =
  "The console could not reach the API: the network request failed. " +
  "Check the connection (and, locally, that make run is running), then try again.";

/**
 * One call. Resolves with the parsed JSON of a 2xx answer; rejects with an
 * ApiError whose message is a sentence (status 0: the network failed).
 */
export async function request(method, path, { query, body, jsonBody, key = storedKey(), signal } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = basicAuthorization(key.keyId, key.secret);
  let payload;
  if (jsonBody !== undefined) {
    payload = jsonBody; // JSON text built by the caller (exact numbers)
    headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(apiUrl(path, query), {
      method,
      headers,
      body: payload,
      cache: "no-store",
      credentials: "omit",
      signal,
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(NETWORK_FAILURE, { status: 0 });
  }
  let text = "";
  try {
    text = await response.text();
  } catch {
    throw new ApiError(NETWORK_FAILURE, { status: 0 });
  }
  let data = null;
  try {
    data = text ? parseJson(text) : null;
  } catch {
    data = null;
  }
  if (response.ok) {
    if (data === null || typeof data !== "object") {
      throw new ApiError(`The API answered (status ${response.status}) with something that is not JSON.`, {
        status: response.status,
      });
    }
    return data;
  }
  throw new ApiError(errorSentence(response.status, data), {
    status: response.status,
    problems: data && data.problems,
    body: data,
  });
}

// The head of a CSV file, read in the browser: RFC 4180 records (quoted
// fields with "" inside, delimiters and line breaks inside quotes), so the
// wizard shows the header and first rows the importer will read, and sends
// the preview whole records only.

export const DELIMITERS = [",", ";", "\t", "|"];
export const HEAD_BYTES = 65536; // the preview's limit of UTF-8 bytes (the API's)

/**
 * The first bytes of a file (decompressed for .csv.gz), at most HEAD_BYTES:
 * {bytes: Uint8Array, whole: true when this is the whole file}.
 */
export async function readHead(file) {
  if (/\.gz$/i.test(file.name)) {
    if (typeof DecompressionStream !== "function") {
      throw new Error("This browser cannot read a .csv.gz file; choose the .csv file instead.");
    }
    const reader = file.stream().pipeThrough(new DecompressionStream("gzip")).getReader();
    const chunks = [];
    let size = 0;
    let whole = false;
    try {
      while (size <= HEAD_BYTES) {
        const { done, value } = await reader.read();
        if (done) {
          whole = true;
          break;
        }
        chunks.push(value);
        size += value.length;
      }
    } catch {
      throw new Error(`${file.name} is not a gzip file that can be read: its first rows cannot be shown.`);
    } finally {
      reader.cancel().catch(() => {});
    }
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    return { bytes: bytes.subarray(0, HEAD_BYTES), whole: whole && size <= HEAD_BYTES };
  }
  const slice = file.slice(0, HEAD_BYTES);
  return { bytes: new Uint8Array(await slice.arrayBuffer()), whole: file.size <= HEAD_BYTES };
}

/** The delimiter of a header line: the candidate found most often outside quotes ("," by default). */
export function detectDelimiter(text) {
  const counts = new Map(DELIMITERS.map((d) => [d, 0]));
  let quoted = false;
  for (const char of text) {
    if (char === '"') quoted = !quoted;
    else if (!quoted && (char === "\n" || char === "\r")) break;
    else if (!quoted && counts.has(char)) counts.set(char, counts.get(char) + 1);
  }
  let best = ",";
  for (const [delimiter, count] of counts) if (count > counts.get(best)) best = delimiter;
  return best;
}

/**
 * Records of ``text`` up to ``maxRecords``, as the importer reads them: a
 * record ends at a line break (\n, or \r\n) outside quotes; blank records
 * (an empty line, or one empty field) are skipped, as the importer skips
 * them. {records: [[field, ...]], ends: [index after each record's line
 * break]}. A record cut off by the end of the text is left out unless
 * ``atEnd`` (the text is the whole file).
 */
export function parseRecords(text, delimiter, { maxRecords = Infinity, atEnd = false } = {}) {
  const records = [];
  const ends = [];
  let fields = [];
  let field = "";
  let quoted = false;
  let i = 0;
  const finishRecord = (end) => {
    fields.push(field);
    if (fields.length > 1 || fields[0] !== "") {
      records.push(fields);
      ends.push(end);
    }
    fields = [];
    field = "";
  };
  while (i < text.length && records.length < maxRecords) {
    const char = text[i];
    if (quoted) {
      if (char === '"') {
        if (i + 1 >= text.length && !atEnd) break; // "" may be cut in two: wait for more
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        field += char;
      }
      i += 1;
      continue;
    }
    if (char === '"' && field === "") {
      quoted = true;
    } else if (char === delimiter) {
      fields.push(field);
      field = "";
    } else if (char === "\n" || (char === "\r" && text[i + 1] === "\n")) {
      const end = i + (char === "\r" ? 2 : 1);
      finishRecord(end);
      i = end;
      continue;
    } else if (char === "\r" && i + 1 >= text.length) {
      if (!atEnd) break; // \r\n may be cut in two
      finishRecord(text.length); // the file's last line break
      i += 1;
      continue;
    } else {
      field += char;
    }
    i += 1;
  }
  if (atEnd && i >= text.length && !quoted && records.length < maxRecords && (field !== "" || fields.length)) {
    finishRecord(text.length);
  }
  return { records, ends };
}

/** A file whose head is not UTF-8 text; ``line``: the first line that is not (1 = the header). */
export class NotUtf8Error extends Error {
  constructor(line) {
    super(`line ${line} is not valid UTF-8 text`);
    this.name = "NotUtf8Error";
    this.line = line;
  }
}

const NEWLINE = 0x0a;

/**
 * The head's whole lines as text, decoded strictly: the importer rejects a
 * row that is not valid UTF-8, so a head that is not (Latin-1, Windows-1252)
 * throws NotUtf8Error instead of showing U+FFFD where the importer would
 * refuse. Only whole lines count (all of them when ``whole``): a head cut at
 * HEAD_BYTES may end inside a character, and a newline byte is never inside
 * one in UTF-8.
 */
function utf8Lines(bytes, whole) {
  const end = whole ? bytes.length : bytes.lastIndexOf(NEWLINE) + 1;
  const lines = bytes.subarray(0, end);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(lines);
  } catch {
    const strict = new TextDecoder("utf-8", { fatal: true });
    let line = 1;
    for (let start = 0; start < lines.length; line += 1) {
      const next = lines.indexOf(NEWLINE, start);
      const stop = next === -1 ? lines.length : next + 1;
      try {
        strict.decode(lines.subarray(start, stop));
      } catch {
        break;
      }
      start = stop;
    }
    throw new NotUtf8Error(line);
  }
}

/**
 * The head of a file as the wizard uses it: its header, its first rows and
 * the sample for the preview (whole records only, the header and up to
 * ``rows`` data rows). Throws NotUtf8Error for a head that is not UTF-8.
 */
export function headOf(bytes, whole, { delimiter = null, rows = 20 } = {}) {
  let text = utf8Lines(bytes, whole);
  if (text.startsWith("\ufeff")) text = text.slice(1);
  const chosen = delimiter || detectDelimiter(text);
  const { records, ends } = parseRecords(text, chosen, { maxRecords: rows + 1, atEnd: whole });
  if (!records.length) return { delimiter: chosen, header: null, rows: [], sample: "" };
  const sample = text.slice(0, ends[ends.length - 1]);
  return { delimiter: chosen, header: records[0], rows: records.slice(1), sample };
}

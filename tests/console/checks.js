// Checks run inside the console's page by tests/console/test_accessibility.py.

// Every visible element with text of its own whose colour is under 4.5:1
// (WCAG's contrast ratio) against the background it is drawn on: the first
// ancestor with an opaque background colour.
function lowContrast() {
  const parse = (color) => {
    const m = color.match(/[\d.]+/g).map(Number);
    return { r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1 };
  };
  const channel = (v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  };
  const luminance = ({ r, g, b }) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const color = parse(getComputedStyle(e).backgroundColor);
      if (color.a >= 0.99) return color;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const failures = [];
  for (const element of document.querySelectorAll("body *")) {
    const ownText = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!ownText || !element.getClientRects().length) continue;
    const style = getComputedStyle(element);
    if (style.visibility === "hidden" || element.closest(".visually-hidden")) continue;
    const fg = parse(style.color);
    const bg = background(element);
    const mix = (a, b) => a * fg.a + b * (1 - fg.a);
    const shown = { r: mix(fg.r, bg.r), g: mix(fg.g, bg.g), b: mix(fg.b, bg.b) };
    const [high, low] = [luminance(shown), luminance(bg)].sort((a, b) => b - a);
    const ratio = (high + 0.05) / (low + 0.05);
    if (ratio < 4.5) {
      failures.push(`${element.tagName} "${element.textContent.trim().slice(0, 40)}": ${ratio.toFixed(2)}`);
    }
  }
  return failures;
}

// Visible form controls without a name from a label (or aria-label/-labelledby).
function unlabelled() {
  return [...document.querySelectorAll("input, select, textarea")]
    .filter((e) => e.type !== "hidden" && e.getClientRects().length)
    .filter((e) => !(e.labels && e.labels.length))
    .filter((e) => !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby"))
    .map((e) => e.outerHTML.slice(0, 80));
}

// The page's width against the window's, and the elements that pass its
// right edge (a box of the file's first rows scrolls inside itself).
function widerThanTheScreen() {
  return {
    page: document.documentElement.scrollWidth,
    screen: window.innerWidth,
    wide: [...document.querySelectorAll("body *")]
      .filter((e) => e.getClientRects().length && !e.closest(".scroll-x"))
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
      .map((e) => `${e.tagName}.${e.className}`)
      .slice(0, 5),
  };
}

// Markdown of replies, in the dialect the share page and the PDF use on the server
// (app/core/markdown.py): CommonMark with GitHub's tables, strikethrough, task lists and
// autolinks, a line break for every newline, and TeX math ($…$, $$…$$, \(…\), \[…\]).
//
// Safety: raw HTML in a message stays text (markdown-it's `html: false`); only http(s) and
// mailto links are made; images become links (the page loads none from outside); and what
// markdown-it writes goes through DOMPurify, with a short list of tags and attributes,
// before it reaches the page. highlight.js and KaTeX are loaded the first time a code
// block or a formula appears; both build DOM (KaTeX) or escaped spans (highlight.js,
// sanitized again) and never need inline script or inline style, so the page's CSP stays.
//
// The libraries are vendored under static/vendor/ (scripts/vendor_web.py refreshes them).

import MarkdownIt from "../vendor/markdown-it/markdown-it.mjs";
import taskLists from "../vendor/markdown-it-task-lists/task-lists.mjs";
import texmath from "../vendor/markdown-it-texmath/texmath.mjs";
import DOMPurify from "../vendor/dompurify/purify.mjs";
import { h } from "./dom.js";

const VENDOR = new URL("../vendor/", import.meta.url);
/** Links open in a new tab and tell the target nothing of the page. */
export const LINK_REL = "noopener noreferrer nofollow";
const WEB_URL = /^(?:https?:|mailto:)/i;
/** Larger code blocks are shown without colours: highlighting them costs more than it helps. */
const HIGHLIGHT_MAX_CHARS = 20_000;
/** Formulas longer than this are shown as their TeX source. */
const MATH_MAX_CHARS = 4_000;

const md = new MarkdownIt("default", { html: false, linkify: true, breaks: true, typographer: false });
md.validateLink = (url) => WEB_URL.test(url.trim());
md.use(taskLists, { enabled: false });
// The parser of texmath finds the formulas; its renderer is replaced below by one that
// leaves the TeX for KaTeX, drawn later into the page's DOM.
md.use(texmath, { engine: { renderToString: () => "" }, delimiters: ["dollars", "brackets"] });
const MATH = texmath.mergeDelimiters(["dollars", "brackets"]);
for (const [rule, block] of [...MATH.inline.map((r) => [r, false]), ...MATH.block.map((r) => [r, true])]) {
  const kind = block || rule.displayMode ? "display" : "inline";
  const tag = block ? "div" : "span";
  md.renderer.rules[rule.name] = (tokens, idx) =>
    `<${tag} class="math math-${kind}">${md.utils.escapeHtml(tokens[idx].content.trim())}</${tag}>`;
}
// A code block names its language (its Copy button is added once it is sanitized).
md.renderer.rules.fence = (tokens, idx) => {
  const token = tokens[idx];
  const lang = token.info.trim().split(/\s+/)[0] || "";
  const escape = md.utils.escapeHtml;
  const codeClass = lang ? ` class="language-${escape(lang)}"` : "";
  return (
    `<div class="code-block"><div class="code-head"><span class="code-lang">${escape(lang || "text")}</span></div>` +
    `<pre><code${codeClass}>${escape(token.content)}</code></pre></div>\n`
  );
};
md.renderer.rules.code_block = md.renderer.rules.fence;
// Images are not loaded from anywhere: the picture is a link to it, named by its alt text.
md.renderer.rules.image = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  const src = token.attrGet("src") || "";
  const alt = self.renderInlineAsText(token.children || [], options, env) || src;
  return `<a class="md-image" href="${md.utils.escapeHtml(src)}">${md.utils.escapeHtml(alt)}</a>`;
};
// Column alignment as a class: the CSP forbids style attributes.
for (const name of ["th_open", "td_open"]) {
  md.renderer.rules[name] = (tokens, idx, options, env, self) => {
    const token = tokens[idx];
    const style = token.attrGet("style");
    if (style) {
      token.attrs = token.attrs.filter(([key]) => key !== "style");
      const align = style.replace(/^text-align:\s*/, "");
      if (/^(left|right|center)$/.test(align)) token.attrJoin("class", `md-align-${align}`);
    }
    return self.renderToken(tokens, idx, options);
  };
}

const TAGS = [
  "a", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
  "input", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
];
const PURIFY = {
  ALLOWED_TAGS: TAGS,
  ALLOWED_ATTR: ["href", "class", "start", "type", "checked", "disabled", "aria-label"],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  // DOMPurify's own pattern with only web schemes (it also checks plain values such as
  // type="checkbox" with it); the hook below then keeps only absolute web links.
  ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i,
  RETURN_DOM_FRAGMENT: true,
};
const SCROLLERS = "pre, table, .math-display";
const PURIFY_SPANS = { ALLOWED_TAGS: ["span"], ALLOWED_ATTR: ["class"], RETURN_DOM_FRAGMENT: true };

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.nodeName === "A") {
    const href = node.getAttribute("href");
    if (!href || !WEB_URL.test(href)) node.removeAttribute("href");
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", LINK_REL);
  } else if (node.nodeName === "INPUT") {
    // Only the task lists' checkboxes, and they cannot be changed.
    if (node.getAttribute("type") !== "checkbox") node.remove();
    else {
      node.setAttribute("disabled", "");
      node.setAttribute("aria-label", "Task"); // a checkbox needs a name; checked says done
    }
  }
});
// target is set by the hook above, after the attribute check: allowed for links only.
DOMPurify.addHook("uponSanitizeAttribute", (node, data) => {
  if (data.attrName === "target") data.keepAttr = node.nodeName === "A";
});

// ---- the libraries loaded on first use ---------------------------------------------------

const lazy = { hljs: null, katex: null, loading: new Map() };
const HLJS_THEMES = [
  "highlight.js/github.css|not all and (prefers-color-scheme: dark)",
  "highlight.js/github-dark.css|(prefers-color-scheme: dark)",
];

/** `href` is "file.css" or "file.css|media query". */
function addStylesheet(entry) {
  const [href, media] = entry.split("|");
  if (document.querySelector(`link[data-vendor="${href}"]`)) return;
  document.head.append(h("link", { rel: "stylesheet", href: new URL(href, VENDOR).href, media, dataset: { vendor: href } }));
}

function load(name, path, styles, then) {
  if (!lazy.loading.has(name)) {
    for (const css of styles) addStylesheet(css);
    const promise = import(new URL(path, VENDOR).href).then((module) => {
      lazy[name] = module.default;
      return lazy[name];
    });
    lazy.loading.set(name, promise);
  }
  lazy.loading.get(name).then(then, () => {
    /* not loaded (offline): the plain text stays */
  });
}

// ---- drawing ------------------------------------------------------------------------------

/** Markdown `text` as a DOM fragment, sanitized; code blocks get their language and a Copy
 *  button, formulas and highlighting are drawn now or as soon as their library is loaded. */
export function renderMarkdown(text) {
  const fragment = DOMPurify.sanitize(md.render(text), PURIFY);
  for (const head of fragment.querySelectorAll(".code-block > .code-head")) addCopyButton(head);
  // Code, tables and display formulas scroll sideways on their own: the keyboard reaches
  // them (arrow keys scroll them once focused).
  for (const box of fragment.querySelectorAll(SCROLLERS)) box.tabIndex = 0;
  const codes = [...fragment.querySelectorAll("pre > code")];
  const maths = [...fragment.querySelectorAll(".math")];
  if (codes.length) {
    if (lazy.hljs) codes.forEach(highlight);
    else load("hljs", "highlight.js/highlight.mjs", HLJS_THEMES, () => codes.forEach(highlight));
  }
  if (maths.length) {
    if (lazy.katex) maths.forEach(typeset);
    else load("katex", "katex/katex.mjs", ["katex/katex.css"], () => maths.forEach(typeset));
  }
  return fragment;
}

function languageOf(code) {
  const name = [...code.classList].find((c) => c.startsWith("language-"));
  return name ? name.slice("language-".length) : "";
}

function addCopyButton(head) {
  const lang = head.querySelector(".code-lang")?.textContent || "text";
  head.append(h("button", { type: "button", class: "code-copy", "aria-label": `Copy the ${lang} code`, text: "Copy" }));
}

/** Highlighted HTML by language and code: a reply streaming in is drawn again every frame,
 *  and its finished code blocks need not be coloured again each time. */
const highlighted = new Map();
const HIGHLIGHT_CACHE = 64;

function highlight(code) {
  const hljs = lazy.hljs;
  const lang = languageOf(code);
  const text = code.textContent;
  if (!hljs || !lang || !hljs.getLanguage(lang) || text.length > HIGHLIGHT_MAX_CHARS || code.dataset.highlighted) return;
  const key = `${lang}\n${text}`;
  let html = highlighted.get(key);
  if (html === undefined) {
    try {
      html = hljs.highlight(text, { language: lang, ignoreIllegals: true }).value;
    } catch {
      return; // left plain
    }
    if (highlighted.size >= HIGHLIGHT_CACHE) highlighted.delete(highlighted.keys().next().value);
    highlighted.set(key, html);
  }
  code.replaceChildren(DOMPurify.sanitize(html, PURIFY_SPANS));
  code.classList.add("hljs");
  code.dataset.highlighted = "yes";
}

function typeset(box) {
  const katex = lazy.katex;
  const tex = box.textContent;
  if (!katex || tex.length > MATH_MAX_CHARS || box.dataset.tex !== undefined) return;
  box.dataset.tex = tex;
  try {
    // KaTeX builds DOM nodes itself (styles set through the CSSOM: allowed by the CSP);
    // trust: false keeps \href, \url and the like as text.
    katex.render(tex, box, {
      displayMode: box.classList.contains("math-display"),
      throwOnError: false,
      trust: false,
      strict: "ignore",
      maxSize: 20,
      maxExpand: 500,
      output: "htmlAndMathml",
    });
  } catch {
    box.textContent = tex;
  }
}

/** Fills `box` with `text` as Markdown. */
export function showMarkdown(box, text) {
  box.classList.add("md");
  box.replaceChildren(renderMarkdown(text));
}

/** Puts `text` on the clipboard. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on another host than localhost: the older way, through a hidden text area.
  const area = h("textarea", { class: "visually-hidden", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  try {
    if (!document.execCommand("copy")) throw new Error("Copy is not allowed here.");
  } finally {
    area.remove();
  }
}

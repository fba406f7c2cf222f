// A minimal document for the web client's DOM-building modules under Node (no jsdom):
// elements, text nodes and fragments with the few properties they set, and `html()`,
// which serializes a node the way a browser would (text escaped, attributes quoted).

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };
const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ESCAPES[c]);

class Node {
  constructor() { this.childNodes = []; }
  append(...nodes) {
    for (const n of nodes) this.childNodes.push(typeof n === 'string' ? new Text(n) : n);
  }
  get textContent() { return this.childNodes.map((c) => c.textContent).join(''); }
  set textContent(value) { this.childNodes = [new Text(String(value))]; }
}

class Text extends Node {
  constructor(data) { super(); this.data = data; }
  get textContent() { return this.data; }
  set textContent(value) { this.data = String(value); }
}

class Fragment extends Node {}

class Element extends Node {
  constructor(tag) { super(); this.tagName = tag.toUpperCase(); this.attributes = new Map(); }
  setAttribute(name, value) { this.attributes.set(name, String(value)); }
  getAttribute(name) { return this.attributes.get(name) ?? null; }
  set href(v) { this.setAttribute('href', v); }
  get href() { return this.getAttribute('href'); }
  set target(v) { this.setAttribute('target', v); }
  set rel(v) { this.setAttribute('rel', v); }
  set className(v) { this.setAttribute('class', v); }
  get className() { return this.getAttribute('class') ?? ''; }
  set dir(v) { this.setAttribute('dir', v); }
}

export function html(node) {
  if (node instanceof Text) return escape(node.data);
  const inner = node.childNodes.map(html).join('');
  if (node instanceof Fragment) return inner;
  const tag = node.tagName.toLowerCase();
  const attrs = [...node.attributes].map(([k, v]) => ` ${k}="${escape(v)}"`).join('');
  return tag === 'br' ? `<br${attrs}>` : `<${tag}${attrs}>${inner}</${tag}>`;
}

globalThis.document = {
  createElement: (tag) => new Element(tag),
  createTextNode: (data) => new Text(String(data)),
  createDocumentFragment: () => new Fragment(),
};

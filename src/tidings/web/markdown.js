// A safe Markdown subset: **bold**, *italics* / _italics_, `code`, ```code blocks```,
// [links](https://…), bare https:// links, @mentions and line breaks.
// The output is DOM nodes; user text only ever becomes text nodes, so HTML in a
// message is shown as typed and never interpreted.
//
// The parser runs in time linear in the input, whatever the input (a message of
// 16 KiB of backticks, asterisks or brackets included): one left-to-right scan, where
// every delimiter finds its closer in O(1) through indexes built once per text (`Index`,
// one right-to-left pass each), and no backtracking regular expression. Constructs nest
// at most once per kind (bold in italics in a link, never bold in bold), so each
// character is scanned a bounded number of times.

const SAFE_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);
const BARE_PREFIXES = ['https://', 'http://', 'mailto:'];
const URL_TRAILING = new Set(['.', ',', ':', ';', '"', "'", ')', ']', '!', '?']); // not the last char of a bare link
const SPACE = /\s/;
const WORD = /\w/;

const isSpace = (c) => c !== undefined && SPACE.test(c);
const isWord = (c) => c !== undefined && WORD.test(c);
const isNameChar = (c) => c === '.' || c === '-' || isWord(c);

export function safeUrl(raw) {
  try {
    const url = new URL(raw, 'https://invalid.invalid/');
    if (!SAFE_PROTOCOLS.has(url.protocol)) return null;
    if (url.hostname === 'invalid.invalid') return null; // relative links are not allowed
    return url.href;
  } catch {
    return null;
  }
}

// For each position i, where the next delimiter of a kind at or after i is (-1: none).
class Index {
  constructor(s) {
    const n = s.length;
    const next = (test) => {
      const out = new Int32Array(n + 4).fill(-1);
      for (let i = n - 1; i >= 0; i -= 1) out[i] = test(i) ? i : out[i + 1];
      return out;
    };
    this.star = next((i) => s[i] === '*');
    this.underscore = next((i) => s[i] === '_');
    this.bracket = next((i) => s[i] === ']');
    this.newline = next((i) => s[i] === '\n');
    this.parenOrSpace = next((i) => s[i] === ')' || isSpace(s[i]));
    this.urlStop = next((i) => s[i] === '<' || s[i] === '>' || isSpace(s[i]));
    // `**` / `__` that can close: after a non-space; `__` also not before a word character.
    this.boldStar = next((i) => s[i] === '*' && s[i + 1] === '*' && i > 0 && !isSpace(s[i - 1]));
    this.boldUnder = next((i) => s[i] === '_' && s[i + 1] === '_' && i > 0 && !isSpace(s[i - 1]) && !isWord(s[i + 2]));
    // The last character at or before i that may end a bare link.
    this.urlEnd = new Int32Array(n + 1).fill(-1);
    for (let i = 0; i < n; i += 1) this.urlEnd[i] = URL_TRAILING.has(s[i]) ? (i > 0 ? this.urlEnd[i - 1] : -1) : i;
    // Backtick runs: each run's start -> the start of the next run of the same length.
    this.runEnd = new Int32Array(n + 1).fill(-1);
    this.closeRun = new Int32Array(n + 1).fill(-1);
    const latest = new Map();
    for (let i = n - 1; i >= 0; i -= 1) {
      if (s[i] !== '`') continue;
      let start = i;
      while (start > 0 && s[start - 1] === '`') start -= 1;
      const len = i + 1 - start;
      this.runEnd[start] = i + 1;
      this.closeRun[start] = latest.get(len) ?? -1;
      latest.set(len, start);
      i = start;
    }
  }
}

function pushText(out, text) {
  const parts = text.split('\n');
  parts.forEach((part, i) => {
    if (i > 0) out.push({ type: 'br' });
    if (part) out.push({ type: 'text', text: part });
  });
}

// Parse s[a, b) into inline nodes. `boundary` is where the last construct ended: like the
// regular expressions this replaces, a `_` or `@` right after one opens whatever precedes it.
function inline(s, ix, a, b, opts, inLink) {
  const out = [];
  let text = a; // start of the pending literal text
  let boundary = a;
  let i = a;
  const emit = (node, end) => {
    if (text < i) pushText(out, s.slice(text, i));
    if (node) out.push(node);
    i = end;
    text = end;
    boundary = end;
  };
  const openAfter = (pos) => pos === boundary || !isWord(s[pos - 1]);
  // `**`/`__` (closing run from `double`) or `*`/`_` (from `single`; `closes` checks
  // what follows the closer) at i: emitted and true, or false for literal text.
  const emphasis = (ch, double, single, closes) => {
    if (s[i + 1] === ch && i + 2 < b && !isSpace(s[i + 2])) {
      const p = double[i + 3];
      if (p >= 0 && p + 2 <= b) {
        emit({ type: 'strong', children: inline(s, ix, i + 2, p, opts, inLink) }, p + 2);
        return true;
      }
    }
    if (i + 1 < b && s[i + 1] !== ch && !isSpace(s[i + 1])) {
      const q = single[i + 1];
      if (q >= 0 && q < b && !isSpace(s[q - 1]) && closes(q)) {
        emit({ type: 'em', children: inline(s, ix, i + 1, q, opts, inLink) }, q + 1);
        return true;
      }
    }
    return false;
  };
  while (i < b) {
    const c = s[i];
    if (c === '`') {
      const end = ix.runEnd[i];
      const close = ix.closeRun[i];
      if (end < 0) { // inside a run (cannot happen: runs are only entered at their start)
        i += 1;
        continue;
      }
      if (close >= 0 && close + (end - i) <= b) {
        const code = s.slice(end, close);
        const strip = code.length >= 2 && code[0] === ' ' && code[code.length - 1] === ' ';
        emit({ type: 'code', text: strip ? code.slice(1, -1) : code }, close + (end - i));
      } else {
        i = end; // an unclosed run is literal text
      }
      continue;
    }
    if (c === '*' && emphasis('*', ix.boldStar, ix.star, () => true)) continue;
    if (c === '_' && openAfter(i)
      && emphasis('_', ix.boldUnder, ix.underscore, (q) => q + 1 === b || !isWord(s[q + 1]))) continue;
    if (c === '[') {
      const q = ix.bracket[i + 1];
      const nl = ix.newline[i + 1];
      if (q > i + 1 && q + 1 < b && (nl < 0 || nl > q) && s[q + 1] === '(') {
        const r = ix.parenOrSpace[q + 2];
        if (r > q + 2 && r < b && s[r] === ')') {
          const href = safeUrl(s.slice(q + 2, r));
          if (href && !inLink) emit({ type: 'link', href, children: inline(s, ix, i + 1, q, opts, true) }, r + 1);
          else emit({ type: 'text', text: s.slice(i, r + 1) }, r + 1);
          continue;
        }
      }
    } else if (c === 'h' || c === 'm') {
      const prefix = BARE_PREFIXES.find((p) => s.startsWith(p, i));
      if (prefix && i + prefix.length < b) {
        const stop = ix.urlStop[i + prefix.length];
        const last = ix.urlEnd[(stop < 0 || stop > b ? b : stop) - 1];
        if (last >= i + prefix.length) {
          const url = s.slice(i, last + 1);
          const href = safeUrl(url);
          emit(href && !inLink ? { type: 'link', href, children: [{ type: 'text', text: url }] } : { type: 'text', text: url },
            last + 1);
          continue;
        }
      }
    } else if (c === '@' && (i === boundary || (!isWord(s[i - 1]) && s[i - 1] !== '@'))) {
      let j = i + 1;
      while (j < b && isNameChar(s[j])) j += 1;
      while (j > i + 1 && !isWord(s[j - 1])) j -= 1;
      if (j > i + 1) {
        const name = s.slice(i + 1, j);
        const known = opts.isMember ? opts.isMember(name) : true;
        const me = (Boolean(opts.me) && name.toLowerCase() === opts.me.toLowerCase())
          || (Boolean(opts.alsoMe) && opts.alsoMe.has(name.toLowerCase())); // @all, @channel, @here
        emit(known ? { type: 'mention', name, me } : { type: 'text', text: '@' + name }, j);
        continue;
      }
    }
    i += 1;
  }
  emit(null, b);
  return out;
}

// Every position where ``` is followed by blanks to the end of its line: where a fenced
// code block may close (the first one after its opening line).
function closingFences(text) {
  const out = [];
  for (let p = text.indexOf('```'); p >= 0; p = text.indexOf('```', p + 1)) {
    const end = p + 3 + blanks(text, p + 3);
    if (end === text.length || text[end] === '\n') out.push(p);
  }
  return out;
}

function blanks(text, from) {
  let end = from;
  while (text[end] === ' ' || text[end] === '\t') end += 1;
  return end - from;
}

// The next ``` at a line start at or after `from`, or -1.
function nextOpening(text, from) {
  if (from === 0 && text.startsWith('```')) return 0;
  const k = text.indexOf('\n```', Math.max(0, from - 1));
  return k < 0 ? -1 : k + 1;
}

// Parse `source` into a list of nodes: {type: 'text', text} | {type: 'br'} |
// {type: 'code' | 'pre', text} | {type: 'strong' | 'em', children} |
// {type: 'link', href, children} | {type: 'mention', name, me}.
// opts: { me: own username, alsoMe: a Set of lowercase names shown as mine too (@all), isMember: (username) => bool }
export function parseMarkdown(source, opts = {}) {
  const text = String(source ?? '').replace(/\r\n?/g, '\n');
  const out = [];
  const chunk = (part) => {
    if (part) out.push(...inline(part, new Index(part), 0, part.length, opts, false));
  };
  const closes = closingFences(text);
  let c = 0; // closes[c] is the first close not yet passed
  let last = 0; // the text before `last` is rendered
  for (let start = nextOpening(text, 0); start >= 0; ) {
    const contentStart = text.indexOf('\n', start) + 1;
    if (contentStart === 0) break; // an opening line needs a line after it
    while (c < closes.length && closes[c] < contentStart) c += 1;
    if (c === closes.length) break; // nothing after this opening closes it, nor a later one
    const p = closes[c];
    const closeEnd = p + 3 + blanks(text, p + 3);
    const before = text.slice(last, start);
    chunk(before.endsWith('\n') ? before.slice(0, -1) : before);
    out.push({ type: 'pre', text: text.slice(contentStart, p > contentStart && text[p - 1] === '\n' ? p - 1 : p) });
    last = closeEnd + (text[closeEnd] === '\n' ? 1 : 0);
    start = nextOpening(text, closeEnd);
  }
  chunk(text.slice(last));
  return out;
}

function toDom(nodes) {
  return nodes.map((node) => {
    switch (node.type) {
      case 'text': return document.createTextNode(node.text);
      case 'br': return document.createElement('br');
      case 'code': case 'pre': {
        const code = document.createElement('code');
        code.textContent = node.text;
        if (node.type === 'code') return code;
        const pre = document.createElement('pre');
        pre.append(code);
        return pre;
      }
      case 'strong': case 'em': {
        const el = document.createElement(node.type);
        el.append(...toDom(node.children));
        return el;
      }
      case 'link': {
        const a = document.createElement('a');
        a.href = node.href;
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        a.append(...toDom(node.children));
        return a;
      }
      case 'mention': {
        const span = document.createElement('span');
        span.className = 'mention' + (node.me ? ' mention-me' : '');
        span.textContent = '@' + node.name;
        return span;
      }
      default: throw new Error(`unknown markdown node ${node.type}`);
    }
  });
}

// Render `source` into a DocumentFragment (opts as for parseMarkdown).
export function renderMarkdown(source, opts = {}) {
  const frag = document.createDocumentFragment();
  frag.append(...toDom(parseMarkdown(source, opts)));
  return frag;
}

function plain(nodes, out) {
  for (const node of nodes) {
    if (node.type === 'br') out.push('\n');
    else if (node.type === 'mention') out.push('@' + node.name);
    else if (node.type === 'pre') out.push('\n', node.text, '\n');
    else if (node.children) plain(node.children, out);
    else out.push(node.text);
  }
  return out;
}

// Plain-text preview of a body (for the conversation list and reply quotes): the text
// as rendered, without the markup.
export function plainPreview(source, max = 80) {
  const text = plain(parseMarkdown(source), []).join('').replace(/\s+/g, ' ').trim();
  const chars = [...text];
  return chars.length > max ? chars.slice(0, max - 1).join('') + '…' : text;
}

// A safe Markdown subset: **bold**, *italics* / _italics_, `code`, ```code blocks```,
// [links](https://…), bare https:// links, @mentions and line breaks.
// The output is DOM nodes; user text only ever becomes text nodes, so HTML in a
// message is shown as typed and never interpreted.

const INLINE = new RegExp([
  '(`+)([\\s\\S]*?[^`])\\1(?!`)',                       // 1,2 inline code
  '\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*',                  // 3 bold
  '(?<![\\w])__(?=\\S)([\\s\\S]*?\\S)__(?![\\w])',       // 4 bold
  '\\*(?=[^\\s*])([^*]*?[^\\s*])\\*',                    // 5 italics (single char via lookahead below)
  '\\*([^\\s*])\\*',                                     // 6 one-letter italics
  '(?<![\\w])_(?=[^\\s_])([^_]*?[^\\s_]|[^\\s_])_(?![\\w])', // 7 italics
  '\\[([^\\]\\n]+)\\]\\(([^)\\s]+)\\)',                  // 8,9 link
  '((?:https?:\\/\\/|mailto:)[^\\s<>]*[^\\s<>.,:;"\'\\)\\]!?])', // 10 bare link
  '(?<![\\w@])@([\\w.\\-]*\\w)',                         // 11 mention
].join('|'));

const SAFE_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);

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

function textWithBreaks(out, text) {
  const parts = text.split('\n');
  parts.forEach((part, i) => {
    if (i > 0) out.push(document.createElement('br'));
    if (part) out.push(document.createTextNode(part));
  });
}

function link(href, children) {
  const a = document.createElement('a');
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  for (const c of children) a.append(c);
  return a;
}

function inline(text, opts, inLink = false) {
  const out = [];
  let rest = text;
  while (rest) {
    const m = INLINE.exec(rest);
    if (!m) {
      textWithBreaks(out, rest);
      break;
    }
    if (m.index > 0) textWithBreaks(out, rest.slice(0, m.index));
    rest = rest.slice(m.index + m[0].length);
    if (m[2] !== undefined) {
      const code = document.createElement('code');
      code.textContent = m[2].replace(/^ (.*) $/s, '$1');
      out.push(code);
    } else if (m[3] !== undefined || m[4] !== undefined) {
      const strong = document.createElement('strong');
      strong.append(...inline(m[3] ?? m[4], opts, inLink));
      out.push(strong);
    } else if (m[5] !== undefined || m[6] !== undefined || m[7] !== undefined) {
      const em = document.createElement('em');
      em.append(...inline(m[5] ?? m[6] ?? m[7], opts, inLink));
      out.push(em);
    } else if (m[8] !== undefined) {
      const href = safeUrl(m[9]);
      if (href && !inLink) out.push(link(href, inline(m[8], opts, true)));
      else textWithBreaks(out, m[0]);
    } else if (m[10] !== undefined) {
      const href = safeUrl(m[10]);
      if (href && !inLink) out.push(link(href, [document.createTextNode(m[10])]));
      else textWithBreaks(out, m[10]);
    } else if (m[11] !== undefined) {
      const name = m[11];
      const known = opts.isMember ? opts.isMember(name) : true;
      if (known) {
        const span = document.createElement('span');
        span.className = 'mention' + (opts.me && name.toLowerCase() === opts.me.toLowerCase() ? ' mention-me' : '');
        span.textContent = '@' + name;
        out.push(span);
      } else {
        textWithBreaks(out, m[0]);
      }
    }
  }
  return out;
}

// Render `source` into a DocumentFragment.
// opts: { me: own username, isMember: (username) => bool }
export function renderMarkdown(source, opts = {}) {
  const frag = document.createDocumentFragment();
  const text = String(source ?? '').replace(/\r\n?/g, '\n');
  const fence = /^```[^\n]*\n([\s\S]*?)\n?```[ \t]*$/gm;
  let last = 0;
  let m;
  const pushText = (chunk) => {
    if (!chunk) return;
    for (const node of inline(chunk, opts)) frag.append(node);
  };
  while ((m = fence.exec(text)) !== null) {
    pushText(text.slice(last, m.index).replace(/\n$/, ''));
    const pre = document.createElement('pre');
    const code = document.createElement('code');
    code.textContent = m[1];
    pre.append(code);
    frag.append(pre);
    last = m.index + m[0].length;
    if (text[last] === '\n') last += 1;
  }
  pushText(text.slice(last));
  return frag;
}

// Plain-text preview of a body (for the conversation list and reply quotes).
export function plainPreview(source, max = 80) {
  const text = String(source ?? '')
    .replace(/```[^\n]*\n?/g, '')
    .replace(/\[([^\]\n]+)\]\([^)\s]+\)/g, '$1')
    .replace(/(\*\*|__|`)/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  const chars = [...text];
  return chars.length > max ? chars.slice(0, max - 1).join('') + '…' : text;
}

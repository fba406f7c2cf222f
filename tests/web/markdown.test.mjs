// The web client's Markdown (src/tidings/web/markdown.js): what it renders, that it stays
// safe, and that it runs in linear time on any message the server accepts.
// Run with `node --test tests/web/` (tests/web/test_node_units.py runs them under pytest,
// with TIDINGS_MAX_MESSAGE_BYTES set to the server's default `max_message_bytes`).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { html } from './dom_shim.mjs';
import * as markdown from '../../src/tidings/web/markdown.js';

const { plainPreview, renderMarkdown } = markdown;

const MAX_BYTES = Number(process.env.TIDINGS_MAX_MESSAGE_BYTES || 16 * 1024);
// Generous: a linear parser renders 16 KiB in well under 20 ms here; the backtracking one
// it replaced took 4 s for 2,000 backticks and 48 s for 6,000.
const BOUND_MS = 250;

const OPTS = { me: 'alice', isMember: (u) => ['alice', 'bob', 'alice.smith'].includes(u.toLowerCase()) };
const render = (s, opts = OPTS) => html(renderMarkdown(s, opts));
const A = (href, text) => `<a href="${href}" target="_blank" rel="noopener noreferrer">${text}</a>`;

test('markdown renders the supported subset', () => {
  const cases = [
    ['Hello **Bob**, the release is *today*', 'Hello <strong>Bob</strong>, the release is <em>today</em>'],
    ['**bold** and __bold__ and *it* and _it_ and `code`',
      '<strong>bold</strong> and <strong>bold</strong> and <em>it</em> and <em>it</em> and <code>code</code>'],
    ['a\nb\n\nc', 'a<br>b<br><br>c'],
    ['one\r\ntwo\rthree', 'one<br>two<br>three'],
    ['`` a ` b ``', '<code>a ` b</code>'],
    ['` padded `', '<code>padded</code>'],
    ['`**not bold**`', '<code>**not bold**</code>'],
    ['snake_case_name and a_b_c', 'snake_case_name and a_b_c'],
    ['__init__ method', '<strong>init</strong> method'],
    ['2 * 3 * 4', '2 * 3 * 4'],
    ['**a *b* c**', '<strong>a <em>b</em> c</strong>'],
    ['_a **b** c_', '<em>a <strong>b</strong> c</em>'],
    ['___a___', '<strong><em>a</em></strong>'],
    ['_**a**_', '<em><strong>a</strong></em>'],
    ['**multi\nline** bold', '<strong>multi<br>line</strong> bold'],
    ['中文 **粗体** 和 *斜体* 👍', '中文 <strong>粗体</strong> 和 <em>斜体</em> 👍'],
    ['see [docs](https://example.com/docs) now', `see ${A('https://example.com/docs', 'docs')} now`],
    ['[**bold** link](https://a.b)', A('https://a.b/', '<strong>bold</strong> link')],
    ['**[link](https://a.b) inside**', `<strong>${A('https://a.b/', 'link')} inside</strong>`],
    ['[https://a.b](https://c.d)', A('https://c.d/', 'https://a.b')],
    ['go to https://example.com/a?b=c. Then (https://x.org/y) and mailto:a@b.c!',
      `go to ${A('https://example.com/a?b=c', 'https://example.com/a?b=c')}. Then (${A('https://x.org/y', 'https://x.org/y')}) and ${A('mailto:a@b.c', 'mailto:a@b.c')}!`],
    ['https://a.b/*x*', A('https://a.b/*x*', 'https://a.b/*x*')],
    ['hi @bob and @alice.smith. and @carol-x',
      'hi <span class="mention">@bob</span> and <span class="mention">@alice.smith</span>. and @carol-x'],
    ['Hi @Alice, email a@b.com', 'Hi <span class="mention mention-me">@Alice</span>, email a@b.com'],
    ['```\ncode block\n```', '<pre><code>code block</code></pre>'],
    ['before\n```js\nlet a = **1**;\n```\nafter', 'before<pre><code>let a = **1**;</code></pre>after'],
    ['```\na\n```\n```\nb\n```', '<pre><code>a</code></pre><pre><code>b</code></pre>'],
    ['```\nno close', '```<br>no close'],
    ['```inline```', '<code>inline</code>'],
    ['`unclosed', '`unclosed'],
    ['**', '**'],
    ['', ''],
  ];
  for (const [source, expected] of cases) assert.equal(render(source), expected, JSON.stringify(source));
});

test('markdown never turns message text into markup or unsafe links', () => {
  assert.equal(render('<img src=x onerror=alert(1)>'), '&lt;img src=x onerror=alert(1)&gt;');
  assert.equal(render('**<b>x</b>**'), '<strong>&lt;b&gt;x&lt;/b&gt;</strong>');
  for (const bad of ['[click](javascript:alert(2))', '[x](data:text/html,<script>)', '[rel](/admin)',
    '[x](JaVaScRiPt:alert(1))', '[x](vbscript:msgbox)']) {
    assert.equal(render(bad), html(document.createTextNode(bad)), bad);
  }
  assert.equal(render('javascript:alert(1)'), 'javascript:alert(1)');
  // A link inside a link's text stays text.
  assert.equal(render('[https://a.b x](https://c.d)'), A('https://c.d/', 'https://a.b x'));
  // Every node the parser makes is one of the known, safe kinds.
  const kinds = new Set();
  const walk = (nodes) => nodes.forEach((n) => { kinds.add(n.type); if (n.children) walk(n.children); });
  walk(markdown.parseMarkdown('x\n**a** _b_ `c` [d](https://e.f) https://g.h @bob\n```\ni\n```'));
  assert.deepEqual([...kinds].sort(), ['br', 'code', 'em', 'link', 'mention', 'pre', 'strong', 'text']);
});

test('plain previews show the text without the markup', () => {
  assert.equal(plainPreview('Hello **Bob**, the release is *today*'), 'Hello Bob, the release is today');
  assert.equal(plainPreview('see [docs](https://example.com/docs)\n```\nx = 1\n```'), 'see docs x = 1');
  assert.equal(plainPreview('a'.repeat(100), 10), 'a'.repeat(9) + '…');
  assert.equal(plainPreview('<b>hi</b>'), '<b>hi</b>');
});

// Hostile messages of the largest size the server accepts.
const fill = (unit) => unit.repeat(Math.ceil(MAX_BYTES / unit.length)).slice(0, MAX_BYTES);
const HOSTILE = {
  backticks: '`',
  'backtick pairs': '`a',
  'backtick runs': '``a`',
  'fence openings': '```a\n',
  'fence and backticks': '```\n`',
  asterisks: '*',
  'bold openings': '**a',
  'italic openings': '*a',
  underscores: '_',
  'underscore words': '_a',
  'underscore pairs': 'a__',
  'nested emphasis': '**_*a',
  'nested emphasis closed': '**_*a*_** ',
  alternating: '*_',
  'alternating code': '*`_`',
  brackets: '[',
  'link openings': '[a](',
  'unclosed link urls': '[a](b',
  'bracket pairs': '[a]',
  parentheses: '(',
  'mixed delimiters': '*a_b`c[d](e **f',
  mentions: '@',
  'mention dots': '@a.',
  'bare link prefixes': 'https://',
  'mailto prefixes': 'mailto:',
  'link trailers': 'https://a.b.,;)',
  'blank lines': ' \n',
  'carriage returns': '\r\n',
};

// Inputs where nothing closes: every character comes back as typed.
const UNCLOSED = new Set(['`', '[', '(', '[a](', '[a](b', '@', 'https://']);

test('hostile messages of the maximum size render in linear time, and as they should', () => {
  for (const [name, unit] of Object.entries(HOSTILE)) {
    // Doubling sizes up to the maximum: quadratic code fails on the first too-slow step
    // instead of hanging the run for minutes.
    for (let size = 1024; ; size = Math.min(size * 2, MAX_BYTES)) {
      const source = fill(unit).slice(0, size);
      const started = performance.now();
      const frag = renderMarkdown(source, OPTS);
      plainPreview(source);
      const ms = performance.now() - started;
      assert.ok(ms < BOUND_MS, `${name} (${size} bytes) took ${ms.toFixed(0)} ms`);
      assert.ok(frag.childNodes.length > 0, name);
      if (size < MAX_BYTES) continue;
      if (UNCLOSED.has(unit)) assert.equal(frag.textContent, source, name);
      break;
    }
  }
  // Pairs still pair up at the maximum size.
  const count = (text, part) => text.split(part).length - 1;
  assert.equal(count(render(fill('**a** ')), '<strong>a</strong>'), Math.floor(MAX_BYTES / 6));
  assert.equal(count(render(fill('`a')), '<code>a</code>'), Math.floor(MAX_BYTES / 4));
  assert.equal(count(render(fill('[a](https://b.c) ')), '<a href="https://b.c/"'), Math.floor(MAX_BYTES / 17));
});

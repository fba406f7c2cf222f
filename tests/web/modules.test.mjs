// Every module of the web client parses as an ES module, and every name it imports from
// a sibling module is exported there: a module that fails either stops the whole client
// from loading (app.js imports them all), which the other unit tests, importing only
// the modules without a DOM, would not notice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const WEB = new URL('../../src/tidings/web/', import.meta.url).pathname;
const MODULES = readdirSync(WEB).filter((f) => f.endsWith('.js') && f !== 'sw.js');

function exportsOf(src) {
  const names = new Set();
  for (const m of src.matchAll(/^export\s+(?:async\s+)?(?:function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)/gm)) names.add(m[1]);
  for (const m of src.matchAll(/^export\s*\{([^}]*)\}/gm)) {
    for (const part of m[1].split(',')) {
      const name = part.trim().split(/\s+as\s+/).pop();
      if (name) names.add(name);
    }
  }
  return names;
}

test('every web module parses and imports only what its siblings export', () => {
  assert.ok(MODULES.length > 20);
  const sources = Object.fromEntries(MODULES.map((f) => [f, readFileSync(join(WEB, f), 'utf8')]));
  for (const [file, src] of Object.entries(sources)) {
    const checked = spawnSync(process.execPath, ['--input-type=module', '--check'], { input: src });
    assert.equal(checked.status, 0, `${file}: ${checked.stderr}`);
    const seen = new Set();
    for (const m of src.matchAll(/^import\s*\{([^}]*)\}\s*from\s*'\.\/([\w.-]+)'/gm)) {
      const exported = exportsOf(sources[m[2]] ?? '');
      for (const part of m[1].split(',')) {
        const [name, alias] = part.trim().split(/\s+as\s+/);
        if (!name) continue;
        assert.ok(exported.has(name), `${file} imports ${name} from ${m[2]}, which does not export it`);
        const local = alias || name;
        assert.ok(!seen.has(local), `${file} imports ${local} twice`);
        seen.add(local);
      }
    }
  }
});

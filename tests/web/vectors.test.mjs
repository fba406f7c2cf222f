// The shared client vectors (tests/protocol_vectors/client_session.json, format in the
// README beside it) run against the web client's ClientSession (src/tidings/web/sync.js),
// as tests/unit/protocol/test_session.py runs them against protocol/session.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { ClientSession } from '../../src/tidings/web/sync.js';

const FILE = process.env.TIDINGS_CLIENT_VECTORS
  || fileURLToPath(new URL('../protocol_vectors/client_session.json', import.meta.url));
const ACTIONS = ['connect', 'receive', 'request', 'give_up', 'lost'];

// An outcome in the vectors' language-neutral form.
function outcomeJson(o) {
  switch (o.type) {
    case 'delivered':
      return { type: o.type, position: o.position, out_of_order: o.out_of_order, event: o.event };
    case 'dropped':
      return { type: o.type, position: o.position };
    case 'ready':
      return { type: o.type, position: o.position };
    case 'answered':
      return { type: o.type, ref: o.ref, ok: o.ok, client_msg_id: o.client_msg_id };
    case 'refused':
      return { type: o.type, code: o.code, next: o.next };
    case 'signal':
      return { type: o.type, frame: o.frame };
    case 'ended':
      return { type: o.type, next: o.next, unanswered: o.unanswered, unanswered_sends: o.unanswered_sends };
    default:
      return { type: o.type };
  }
}

function runVector(vector) {
  const session = new ClientSession({ since: vector.since });
  vector.steps.forEach((step, i) => {
    const where = `step ${i}: ${JSON.stringify(step)}`;
    const actions = ACTIONS.filter((a) => a in step);
    assert.equal(actions.length, 1, where);
    const value = step[actions[0]];
    let outcomes = null;
    let sent = [];
    switch (actions[0]) {
      case 'connect':
        sent = [session.authFrame(value)];
        break;
      case 'receive':
        outcomes = session.receive(value);
        break;
      case 'request': {
        const frame = session.request(value);
        if (frame) sent = [frame];
        if ('ref' in step) assert.equal(frame ? frame.ref : null, step.ref, where);
        break;
      }
      case 'give_up':
        session.giveUp(value);
        break;
      default:
        outcomes = session.connectionLost(value);
    }
    // JSON round trip: compared as the wire would carry them.
    assert.deepEqual(JSON.parse(JSON.stringify(sent)), step.sent || [], where);
    if ('outcome' in step) {
      assert.ok(outcomes && outcomes.length, where);
      const actual = JSON.parse(JSON.stringify(outcomeJson(outcomes[0])));
      for (const optional of ['event', 'frame']) if (!(optional in step.outcome)) delete actual[optional];
      assert.deepEqual(actual, step.outcome, where);
    }
    if ('since' in step) assert.equal(session.since, step.since, where);
    if ('pending' in step) assert.deepEqual(session.pending, step.pending, where);
  });
  const counters = { duplicates: 'duplicates', out_of_order: 'outOfOrder', connections: 'connections' };
  for (const [key, expected] of Object.entries(vector.end || {})) {
    assert.ok(key in counters, `unknown counter ${key}`);
    assert.equal(session[counters[key]], expected, key);
  }
}

test('the shared client vectors are there', () => {
  assert.ok(existsSync(FILE), `${FILE} is missing`);
});
if (existsSync(FILE)) {
  const data = JSON.parse(readFileSync(FILE, 'utf-8'));
  assert.equal(data.format, 1);
  assert.ok(data.vectors.length > 0);
  for (const vector of data.vectors) test(`vector: ${vector.name}`, () => runVector(vector));
}

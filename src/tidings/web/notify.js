// Whether a message notifies: the server's policy (src/tidings/core/notify.py,
// should_notify) mirrored rule for rule, so that the browser's Notification API
// respects mute, do not disturb and levels exactly as Web Push and email will
// (docs/protocol.md, "Notifications"). Pure: no DOM, no clock (`now` is given, in ms),
// no network. Node's test runner checks it (tests/web/notify.test.mjs).
//
//   1. your own messages never notify;
//   2. do not disturb (until a time, or a daily schedule in your time zone) silences all;
//   3. a muted conversation notifies nothing (until muted_until, if set);
//   4. the level: all | mentions (by name, @all, @channel, @here) | none; unset: all in
//      direct and group conversations, mentions in channels.

export const LEVELS = ['all', 'mentions', 'none'];
export const EVERYONE = ['all', 'channel', 'here'];

export function defaultLevel(kind) {
  return kind === 'channel' ? 'mentions' : 'all';
}

const ms = (iso) => (iso ? Date.parse(iso) : NaN);

// A member's level in a conversation of `kind` (`notifications` as the server sends it).
export function levelFor(notifications, kind) {
  const level = notifications && notifications.level;
  return LEVELS.includes(level) ? level : defaultLevel(kind);
}

export function mutedAt(notifications, now) {
  if (!notifications || !notifications.muted) return false;
  const until = ms(notifications.muted_until);
  return Number.isNaN(until) || now < until;
}

// Whether @all / @channel / @here count in a conversation's mention badge
// (core/notify.py, counts_everyone): not while it is muted nor at level none.
export function countsEveryone(notifications, kind, now) {
  return !mutedAt(notifications, now) && levelFor(notifications, kind) !== 'none';
}

// "HH:MM" -> minutes after midnight (null when malformed).
export function minutesOf(hhmm) {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(hhmm || '');
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

// The wall-clock minutes after midnight at `now` in the IANA `zone` (null or unknown:
// the device's zone).
export function localMinutes(now, zone) {
  const opts = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  let parts;
  try {
    parts = new Intl.DateTimeFormat('en-US', zone ? { ...opts, timeZone: zone } : opts).formatToParts(new Date(now));
  } catch {
    parts = new Intl.DateTimeFormat('en-US', opts).formatToParts(new Date(now));
  }
  const get = (type) => Number((parts.find((p) => p.type === type) || { value: '0' }).value);
  return (get('hour') % 24) * 60 + get('minute');
}

// Whether a daily schedule {start, end} covers the local minute `at` (from start,
// inclusive, to end, exclusive; end before start crosses midnight).
export function scheduleCovers(schedule, at) {
  if (!schedule) return false;
  const start = minutesOf(schedule.start);
  const end = minutesOf(schedule.end);
  if (start == null || end == null || start === end) return false;
  return start < end ? start <= at && at < end : at >= start || at < end;
}

// Whether do not disturb ({until, schedule}) is on at `now` for someone in `zone`.
export function dndActive(dnd, zone, now) {
  if (!dnd) return false;
  const until = ms(dnd.until);
  if (!Number.isNaN(until) && now < until) return true;
  return scheduleCovers(dnd.schedule, localMinutes(now, zone));
}

// Whether `message` mentions the user `meId`: by name, everyone (@all, @channel), or
// @here while `online` (a tab that receives the message is).
export function isMentioned(meId, message, online = true) {
  if (!message) return false;
  if ((message.mentions || []).includes(meId)) return true;
  const everyone = message.mentions_everyone;
  return everyone === 'all' || everyone === 'channel' || (everyone === 'here' && online);
}

export function shouldNotify({ dnd = null, zone = null, member = null, kind, mentioned, own, now }) {
  if (own || dndActive(dnd, zone, now) || mutedAt(member, now)) return false;
  const level = levelFor(member, kind);
  return level === 'all' || (level === 'mentions' && !!mentioned);
}

// The tab's title with the unread count: "(3) Tidings", "(99+) Tidings".
export function badgeTitle(count, name) {
  return count > 0 ? `(${count > 99 ? '99+' : count}) ${name}` : name;
}

// Whether sending `body` into a conversation of `memberCount` members asks first: it
// mentions everyone and they are more than `confirmMembers` (0: always).
export function needsEveryoneConfirm(body, memberCount, confirmMembers) {
  const found = everyoneMention(body);
  if (!found) return null;
  return memberCount > (confirmMembers || 0) ? found : null;
}

// @all / @channel / @here in a body, as the server parses them (core/rules.py:
// everyone_mention): `all` over `channel` over `here`; null when none.
export function everyoneMention(body) {
  if (!body || !body.includes('@')) return null;
  const found = new Set();
  const re = /(?<![A-Za-z0-9_@])@([A-Za-z0-9][A-Za-z0-9._-]{0,31})/g;
  for (const m of body.matchAll(re)) found.add(m[1].toLowerCase().replace(/\.+$/, ''));
  return EVERYONE.find((w) => found.has(w)) || null;
}

// A search box over the directory that calls onPick(user); used by the members panel
// and the new-conversation dialog.
import { h, clear, avatar } from './dom.js';
import { t } from './i18n.js';

export function userPicker(ctx, { placeholder, onPick, exclude = () => new Set(), testid = 'user-picker', keepOpen = false,
  inline = false }) {
  const results = h('ul', { class: 'picker-results', hidden: true });
  let seq = 0;
  const input = h('input', { type: 'search', placeholder, 'aria-label': placeholder, 'data-testid': testid, autocomplete: 'off' });
  const search = async () => {
    const my = ++seq;
    const q = input.value.trim();
    let users = [];
    try {
      const res = await ctx.api.get('/users', { query: q || null, limit: 20 });
      users = res.users || [];
    } catch { /* shown as no results */ }
    if (my !== seq) return;
    ctx.dispatch({ type: 'users_loaded', users });
    const skip = exclude();
    const me = ctx.state.me.id;
    users = users.filter((u) => u.id !== me && !skip.has(u.id) && !u.disabled);
    clear(results);
    results.hidden = false;
    if (!users.length) results.append(h('li', { class: 'picker-empty' }, t('common.no_results')));
    for (const u of users) {
      results.append(h('li', {}, h('button', { type: 'button', class: 'picker-item', 'data-testid': `${testid}-result`,
        onmousedown: (e) => e.preventDefault(),
        onclick: () => {
          onPick(u);
          input.value = '';
          results.hidden = true;
          if (typeof keepOpen === 'function' ? keepOpen() : keepOpen) input.focus();
        } },
      avatar(u.id, u.display_name || u.username, { size: 'xs' }),
      h('span', { class: 'picker-name' }, u.display_name || u.username),
      h('span', { class: 'picker-user' }, `@${u.username}`))));
    }
  };
  let timer = null;
  input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(search, 150); });
  input.addEventListener('focus', () => search());
  input.addEventListener('blur', () => setTimeout(() => { results.hidden = true; }, 200));
  return h('div', { class: `picker${inline ? ' picker-inline' : ''}` }, input, results);
}

// The Departments tab's changes to one department: rename, move (a new parent, or the
// top level; never under itself or its sub-departments) and delete (only an empty one).
// REST: PATCH /departments/{did} {name} | {parent_id}, DELETE /departments/{did}.
import { h } from './dom.js';
import { t } from './i18n.js';

// The toolbar for department `d` among `departments`; `reload()` after a change.
export function departmentActions(ctx, d, departments, reload) {
  const { api, toast, errorText } = ctx;
  const path = `/departments/${encodeURIComponent(d.id)}`;
  const run = async (call, done) => {
    try {
      await call();
      toast(done);
      reload();
    } catch (err) {
      toast(errorText(err), 'error');
    }
  };
  // the department and everything under it cannot be its new parent
  const below = new Set([d.id]);
  for (let grew = true; grew;) {
    grew = false;
    for (const x of departments) {
      if (x.parent_id && below.has(x.parent_id) && !below.has(x.id)) { below.add(x.id); grew = true; }
    }
  }
  const move = h('select', { class: 'input', 'aria-label': t('dept.move_to'), 'data-testid': 'department-move' },
    h('option', { value: '', disabled: true, selected: true }, t('dept.move_to')),
    h('option', { value: '__top' }, t('admin.no_parent')),
    departments.filter((x) => !below.has(x.id)).map((x) => h('option', { value: x.id }, x.name)));
  move.addEventListener('change', () => {
    const parentId = move.value === '__top' ? null : move.value;
    run(() => api.patch(path, { parent_id: parentId }), t('dept.moved', { name: d.name }));
  });
  return h('div', { class: 'toolbar-actions', 'data-testid': 'department-actions' },
    h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'department-rename', onclick: async () => {
      const name = await ctx.promptDialog(t('dept.rename'), t('admin.department_name'), { value: d.name, minLength: 1 });
      if (name && name.trim() && name.trim() !== d.name) {
        run(() => api.patch(path, { name: name.trim() }), t('dept.renamed', { name: name.trim() }));
      }
    } }, t('dept.rename')),
    move,
    h('button', { class: 'btn btn-small btn-danger', type: 'button', 'data-testid': 'department-delete', onclick: async () => {
      if (!(await ctx.confirmDialog(t('dept.delete_confirm', { name: d.name }), { confirmLabel: t('dept.delete'), danger: true }))) return;
      run(() => api.del(path), t('dept.deleted', { name: d.name }));
    } }, t('dept.delete')));
}

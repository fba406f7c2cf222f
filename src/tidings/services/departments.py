"""The organization's department tree."""

from __future__ import annotations

from tidings.core.audit import AuditAction
from tidings.core.errors import Conflict, InvalidOperation, NotFound
from tidings.core.models import Department, DepartmentId, User
from tidings.core.rules import check_admin, clean_text
from tidings.services.audit import record as audit
from tidings.services.context import Deps


class DepartmentService:
    def __init__(self, deps: Deps) -> None:
        self.d = deps

    async def create(
        self, actor: User | None, name: str, parent_id: str | None = None
    ) -> Department:
        check_admin(actor, "manage departments")
        clean = clean_text(name, field="name", max_chars=80)
        dep = Department(
            id=DepartmentId(self.d.ids.new_id()),
            name=clean,
            parent_id=None if parent_id is None else DepartmentId(parent_id),
        )
        async with self.d.store.write() as tx:
            existing = await tx.list_departments()
            if parent_id is not None and not any(d.id == parent_id for d in existing):
                raise NotFound("parent department not found", department_id=parent_id)
            # The unique (parent_id, name) index treats NULL parents as distinct.
            if any(d.parent_id == dep.parent_id and d.name == clean for d in existing):
                raise Conflict(f"department {clean!r} already exists there")
            await tx.insert_department(dep, self.d.clock.now())
            await audit(
                tx,
                self.d.clock,
                AuditAction.DEPARTMENT_CREATED,
                actor_id=None if actor is None else actor.id,
                target_id=dep.id,
                details={"name": clean, "parent_id": parent_id},
            )
        return dep

    async def rename(self, actor: User | None, department_id: str, name: str) -> Department:
        """Rename a department (admins; `actor` None: the operator at the command line).
        Conflict when its parent already has a department of that name. Audited
        `department_renamed`."""
        check_admin(actor, "manage departments")
        clean = clean_text(name, field="name", max_chars=80)
        async with self.d.store.write() as tx:
            deps = await tx.list_departments()
            dep = _find(deps, department_id)
            if dep.name == clean:
                return dep
            if any(d.parent_id == dep.parent_id and d.name == clean for d in deps):
                raise Conflict(f"department {clean!r} already exists there", field="name")
            await tx.rename_department(dep.id, clean)
            await audit(
                tx,
                self.d.clock,
                AuditAction.DEPARTMENT_RENAMED,
                actor_id=None if actor is None else actor.id,
                target_id=dep.id,
                details={"name": clean, "old_name": dep.name},
            )
        return Department(dep.id, clean, dep.parent_id)

    async def move(
        self, actor: User | None, department_id: str, parent_id: str | None
    ) -> Department:
        """Give a department a new parent (`parent_id` None: the top level), with its
        sub-departments and members. Refused (invalid_operation) when the new parent is
        the department itself or one of its descendants (a cycle); conflict when the new
        parent already has a department of that name. Audited `department_moved`."""
        check_admin(actor, "manage departments")
        async with self.d.store.write() as tx:
            deps = await tx.list_departments()
            dep = _find(deps, department_id)
            if parent_id is not None:
                _find(deps, parent_id, what="parent department")
                if parent_id in _subtree_ids(dep.id, deps):
                    raise InvalidOperation(
                        "a department cannot move under itself or one of its sub-departments"
                    )
            if dep.parent_id == parent_id:
                return dep
            if any(d.parent_id == parent_id and d.name == dep.name for d in deps):
                raise Conflict(f"department {dep.name!r} already exists there", field="parent_id")
            await tx.move_department(dep.id, parent_id)
            await audit(
                tx,
                self.d.clock,
                AuditAction.DEPARTMENT_MOVED,
                actor_id=None if actor is None else actor.id,
                target_id=dep.id,
                details={"parent_id": parent_id, "old_parent_id": dep.parent_id},
            )
        return Department(dep.id, dep.name, None if parent_id is None else DepartmentId(parent_id))

    async def delete(self, actor: User | None, department_id: str) -> None:
        """Delete an empty department. Refused (conflict) while it has members or
        sub-departments: unassign or move them first, so that nobody leaves a
        department by accident; refused too for a department a SCIM client manages
        (the identity provider deletes those). Audited `department_deleted`."""
        check_admin(actor, "manage departments")
        async with self.d.store.write() as tx:
            deps = await tx.list_departments()
            dep = _find(deps, department_id)
            if any(d.parent_id == dep.id for d in deps):
                raise Conflict("the department has sub-departments: move or delete them first")
            if await tx.department_member_ids(dep.id):
                raise Conflict("the department has members: unassign them first")
            if await tx.get_scim_group(dep.id) is not None:
                raise Conflict("a SCIM client manages this department: delete it there")
            await tx.delete_department(dep.id)
            await audit(
                tx,
                self.d.clock,
                AuditAction.DEPARTMENT_DELETED,
                actor_id=None if actor is None else actor.id,
                target_id=dep.id,
                details={"name": dep.name, "parent_id": dep.parent_id},
            )

    async def members(self, actor: User | None, department_id: str) -> list[User]:
        """The department's own members (not its sub-departments'), by username.
        Admins only (everyone may search the directory by department instead)."""
        check_admin(actor, "manage departments")
        async with self.d.store.read() as tx:
            _find(await tx.list_departments(), department_id)
            users = await tx.get_users(await tx.department_member_ids(department_id))
        return sorted(users, key=lambda u: u.username)

    async def list(self, actor: User | None) -> list[Department]:
        async with self.d.store.read() as tx:
            return await tx.list_departments()

    async def resolve(self, ref: str) -> Department:
        """A department by id, by name, or by path `Parent/Child` (for the CLI)."""
        deps = await self.list(None)
        by_id: dict[str, Department] = {d.id: d for d in deps}
        if ref in by_id:
            return by_id[ref]

        def path(d: Department) -> str:
            parts = [d.name]
            while d.parent_id is not None and d.parent_id in by_id:
                d = by_id[d.parent_id]
                parts.append(d.name)
            return "/".join(reversed(parts))

        matches = [d for d in deps if path(d) == ref] or [d for d in deps if d.name == ref]
        if len(matches) != 1:
            raise NotFound(
                f"no single department named {ref!r}" + (" (use its path)" if matches else "")
            )
        return matches[0]

    async def set_member(
        self, actor: User | None, department_id: str, user_id: str, member: bool
    ) -> None:
        check_admin(actor, "manage departments")
        async with self.d.store.write() as tx:
            if not any(d.id == department_id for d in await tx.list_departments()):
                raise NotFound("department not found", department_id=department_id)
            if await tx.get_user(user_id) is None:
                raise NotFound("user not found", user_id=user_id)
            if member:
                await tx.add_department_member(department_id, user_id)
            else:
                await tx.remove_department_member(department_id, user_id)
            await audit(
                tx,
                self.d.clock,
                AuditAction.DEPARTMENT_MEMBER_CHANGED,
                actor_id=None if actor is None else actor.id,
                target_id=department_id,
                details={"user_id": user_id, "member": member},
            )


def _find(deps: list[Department], department_id: str, what: str = "department") -> Department:
    for d in deps:
        if d.id == department_id:
            return d
    raise NotFound(f"{what} not found", department_id=department_id)


def _subtree_ids(root: str, deps: list[Department]) -> set[str]:
    """The department and every department under it."""
    children: dict[str | None, list[str]] = {}
    for d in deps:
        children.setdefault(d.parent_id, []).append(d.id)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found

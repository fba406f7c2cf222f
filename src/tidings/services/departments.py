"""The organization's department tree."""

from __future__ import annotations

from tidings.core.audit import AuditAction
from tidings.core.errors import Conflict, NotFound
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

"""Owner references: make an object a child of another, so a change of the
child reconciles its owner (declare the child kind in `owns`) and deletion
cascades (with a garbage collector)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from .errors import Error
from .object import Object


@dataclass(frozen=True)
class OwnerReference:
    api_version: str
    kind: str
    name: str
    uid: str
    controller: Optional[bool] = None
    block_owner_deletion: Optional[bool] = None

    @classmethod
    def controller_of(cls, owner: Object) -> "OwnerReference":
        """The controller reference to `owner` (`controller` and
        `blockOwnerDeletion` true); raises `Error` if it has no uid."""
        if not owner.uid:
            raise Error(f"{owner.object_ref()} has no metadata.uid to own a child")
        return cls(owner.api_version, owner.kind, owner.name, owner.uid, True, True)

    @classmethod
    def from_json(cls, raw: Dict[str, Any]) -> "OwnerReference":
        return cls(
            str(raw.get("apiVersion", "")),
            str(raw.get("kind", "")),
            str(raw.get("name", "")),
            str(raw.get("uid", "")),
            raw.get("controller") if isinstance(raw.get("controller"), bool) else None,
            raw.get("blockOwnerDeletion") if isinstance(raw.get("blockOwnerDeletion"), bool) else None,
        )

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": self.uid}
        if self.controller is not None:
            out["controller"] = self.controller
        if self.block_owner_deletion is not None:
            out["blockOwnerDeletion"] = self.block_owner_deletion
        return out


def add_owner(obj: Dict[str, Any], owner: OwnerReference) -> Dict[str, Any]:
    """Adds `owner` to `obj["metadata"]["ownerReferences"]` (replacing one with the same uid)."""
    metadata = obj.setdefault("metadata", {})
    refs = [r for r in metadata.get("ownerReferences", []) if r.get("uid") != owner.uid]
    refs.append(owner.to_json())
    metadata["ownerReferences"] = refs
    return obj

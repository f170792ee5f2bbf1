"""The Prisma schema against Prisma's own schema engine (`@prisma/prisma-schema-wasm`, the
engine the CLI runs, built to WebAssembly): it validates on both databases with no lint
warning, is as Prisma's formatter writes it, and its DMMF has the relations on both sides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.schema.model import replica
from service.schema.prisma import prisma_schema
from service.schema.target import Target
from tests.schema.conftest import NODE_DIR, node_workdir, run_tool


def check(tmp_path: Path, node_modules: Path, source: str) -> dict[str, Any]:
    files = {
        "schema.prisma": source,
        "prisma_check.mjs": (NODE_DIR / "prisma_check.mjs").read_text(),
    }
    work = node_workdir(tmp_path, node_modules, files)
    found: dict[str, Any] = json.loads(run_tool(work, "node", "prisma_check.mjs", "schema.prisma"))
    return found


@pytest.mark.parametrize("target", list(Target))
def test_prisma_validates_the_schema_and_reads_its_relations(
    tmp_path: Path, node_modules: Path, target: Target
) -> None:
    described = replica()
    found = check(tmp_path, node_modules, prisma_schema(described, target))
    assert found["warnings"] == []
    assert found["formatted"] is True
    models = {m["name"]: m for m in found["datamodel"]["models"]}
    expected = {t.model: t.name for t in described.tables} | {
        v.model: v.name for v in described.views
    }
    assert {name: m["dbName"] for name, m in models.items()} == expected

    def field(model: str, name: str) -> dict[str, Any]:
        return next(f for f in models[model]["fields"] if f["name"] == name)

    to_user = field("ClerkOrganizationMembership", "user")
    to_memberships = field("ClerkUser", "organizationMemberships")
    assert (to_user["type"], to_user["isList"], to_user["isRequired"]) == (
        "ClerkUser",
        False,
        False,
    )
    assert to_user["relationFromFields"] == ["userId"]
    assert (to_memberships["type"], to_memberships["isList"]) == (
        "ClerkOrganizationMembership",
        True,
    )
    assert to_memberships["relationName"] == to_user["relationName"]
    assert field("ClerkOrganization", "organizationMemberships")["isList"] is True
    assert field("ClerkEmailAddress", "user")["relationFromFields"] == ["userId"]
    assert field("ClerkUser", "emailAddresses")["type"] == "ClerkEmailAddress"
    assert field("ClerkUser", "firstName")["dbName"] == "first_name"


def test_an_invalid_schema_fails_the_check(tmp_path: Path, node_modules: Path) -> None:
    broken = prisma_schema(replica(), Target.SQLITE).replace("@@map(", "@@mapp(", 1)
    files = {
        "schema.prisma": broken,
        "prisma_check.mjs": (NODE_DIR / "prisma_check.mjs").read_text(),
    }
    work = node_workdir(tmp_path, node_modules, files)
    with pytest.raises(AssertionError, match="mapp"):
        run_tool(work, "node", "prisma_check.mjs", "schema.prisma")

"""An import-linter contract type import-linter does not have: **public names**.

A domain imports another domain only through that domain's public names — its package
(``credit_commons.keys``: the names its ``__init__`` exports) or its ``service`` module —
never one of its other modules (issue 15, "Layers, enforced").  The edges (``gateway``,
``cli``, ``jobs``, ``demo``, ``migrations``) compose the domains and may reach into them.

import-linter's own ``protected`` contract cannot say "every submodule but ``service``" without
listing the submodules by hand, which a new module would silently escape; this contract
derives them from the import graph, so a module added later is covered at once.  It is
registered in pyproject.toml (``contract_types``) and run by ``make imports``.
"""

from __future__ import annotations

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck

PUBLIC_SUBMODULES = ("service",)


class PublicNamesContract(Contract):
    """Options: ``domains`` (packages whose insides are private to them) and ``edges``
    (packages that may import any module of a domain)."""

    type_name = "public_names"

    domains = fields.ListField(subfield=fields.StringField())
    edges = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        domains: list[str] = list(self.domains)  # type: ignore[call-overload]
        edges: list[str] = list(self.edges)  # type: ignore[call-overload]
        illegal: list[dict[str, object]] = []
        for domain in domains:
            public = {domain, *(f"{domain}.{name}" for name in PUBLIC_SUBMODULES)}
            private = graph.find_descendants(domain) - public
            for module in sorted(private):
                for importer in sorted(graph.find_modules_that_directly_import(module)):
                    if _within(importer, [domain, *edges]):
                        continue
                    details = graph.get_import_details(importer=importer, imported=module)
                    lines = tuple(detail["line_number"] for detail in details)
                    illegal.append({"importer": importer, "imported": module, "lines": lines})
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for link in check.metadata["illegal"]:
            lines = ", ".join(map(str, link["lines"]))
            output.print_error(
                f"- {link['importer']} -> {link['imported']} (l.{lines}): import it from "
                "the domain's package (add the name to its __init__) or its service",
                bold=False,
            )
            output.new_line()


def _within(module: str, packages: list[str]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)

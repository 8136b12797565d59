"""A small shop config for unit tests of the domain code (no files, no processes)."""

from __future__ import annotations

from agent.config import AgentConfig


def shop_config(**overrides: object) -> AgentConfig:
    data: dict[str, object] = {
        "issuer": {
            "vat": "EL094019245",
            "name": "ΚΑΦΕΝΕΙΟ Η ΩΡΑΙΑ ΕΛΛΑΣ Ο.Ε.",
            "brand": "Ωραία Ελλάς",
            "tax_office": "Δ.Ο.Υ. ΑΘΗΝΩΝ Α'",
            "phone": "2101234567",
            "address": {"street": "Ερμού", "number": "12", "city": "Αθήνα", "postal": "10563"},
        },
        "provider": {
            "base_url": "https://einvoice-demo.s1ecos.gr",
            "portal_url": "https://einvoice-demo-portal.s1ecos.gr/",
            "footer": {
                "legal_name": "SOFTONE ΤΕΧΝΟΛΟΓΙΑ Α.Ε.",
                "web_address": "www.s1ecos.gr",
                "licence": "ΥΠΑΗΕΣ-TEST-0001",
            },
        },
    }
    data.update(overrides)
    return AgentConfig.model_validate(data)

"""Crystal-family knowledge: cards with stoichiometry templates, site chemistry and prototypes."""

from genms_pmg.knowledge.families import (
    ANION_CLASSES,
    FAMILIES,
    FamilyCard,
    SiteSpec,
    get_family,
)

__all__ = ["ANION_CLASSES", "FAMILIES", "FamilyCard", "SiteSpec", "get_family"]

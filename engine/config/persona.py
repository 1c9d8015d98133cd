"""Buyer personas (Buyer-Persona, Wunschkunde; seed 000 §2.3)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from engine.config.types import Frozen, Id, ripen_error


class CompanySize(Frozen):
    """A range of employees; ``max`` open means "and larger"."""

    min: int = Field(ge=1, description="fewest employees")
    max: int | None = Field(default=None, ge=1, description="most employees; empty = no limit")

    @model_validator(mode="after")
    def _ordered(self) -> CompanySize:
        if self.max is not None and self.max < self.min:
            raise ripen_error(
                f"min ({self.min}) is larger than max ({self.max})", "swap min and max"
            )
        return self

    def contains(self, employees: int) -> bool:
        return self.min <= employees and (self.max is None or employees <= self.max)


class PersonaFit(Frozen):
    """What explicit scoring matches a lead and its account against."""

    title_keywords: list[str] = Field(
        default_factory=list,
        description="words matched case-insensitively in the lead's job title",
    )
    industries: list[str] = Field(
        default_factory=list, description="industry codes matched against the account"
    )
    company_size: CompanySize | None = None
    regions: list[str] = Field(
        default_factory=list, description="ISO 3166 country codes, e.g. DE, AT, CH"
    )

    @model_validator(mode="after")
    def _something_to_match(self) -> PersonaFit:
        if not (self.title_keywords or self.industries or self.company_size or self.regions):
            raise ripen_error(
                "no fit criteria: explicit scoring could never match a lead to this persona",
                "add at least one of title_keywords, industries, company_size, regions",
            )
        return self


class Persona(Frozen):
    """An ideal-customer profile; drives explicit scoring and content choice."""

    id: Id
    name: str = Field(min_length=1, description='display name, e.g. "Monika Marketing"')
    description: str = ""
    positions: list[str] = Field(min_length=1, description="titles on the business card")
    industries: list[str] = Field(default_factory=list)
    company_size: CompanySize | None = None
    regions: list[str] = Field(default_factory=list)
    pains: list[str] = Field(default_factory=list, description="Schmerzpunkte")
    desired_results: list[str] = Field(default_factory=list, description="Resultate")
    objections: list[str] = Field(default_factory=list, description="Hinderungsgründe")
    keywords: list[str] = Field(default_factory=list, description="search terms")
    fit: PersonaFit

    @field_validator("id")
    @classmethod
    def _not_all(cls, value: str) -> str:
        if value == "all":
            raise ValueError('"all" is reserved: content for every persona says personas: all')
        return value

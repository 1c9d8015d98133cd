"""Funnel stages exactly as the domain writes them (seed 002 §5.5/5.6)."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """The advanced funnel, from Informieren to Cross-/Up-Sell."""

    INF = "INF"  # Informieren
    BEF = "BEF"  # Befähigen
    EVA = "EVA"  # Evaluieren
    BEW = "BEW"  # Bewerten
    MQL = "MQL"  # Marketing Qualified Lead
    SAL = "SAL"  # Sales Accepted Lead
    SFC = "SFC"  # Sales first contact
    BAN = "BAN"  # Bedarfsanalyse
    BCI = "BCI"  # Buying center identified
    LPN = "LPN"  # Lösungspräsentation
    ANG = "ANG"  # Angebot (opportunity)
    ABS = "ABS"  # Abschluss (won)
    AFS = "AFS"  # After-sales
    WIK = "WIK"  # Wiederkauf
    CUS = "CUS"  # Cross-/Up-Sell


class BuyingStage(StrEnum):
    """The marketing part of the funnel that nurturing journeys develop leads through."""

    INF = "INF"
    BEF = "BEF"
    EVA = "EVA"
    BEW = "BEW"


class CustomerStage(StrEnum):
    """Stages of journeys for existing customers (after-sales, repurchase, cross/up-sell)."""

    AFS = "AFS"
    WIK = "WIK"
    CUS = "CUS"


class JourneyStage(StrEnum):
    """The stages a journey may declare steps for, in funnel order."""

    INF = "INF"
    BEF = "BEF"
    EVA = "EVA"
    BEW = "BEW"
    AFS = "AFS"
    WIK = "WIK"
    CUS = "CUS"


JOURNEY_STAGES: tuple[JourneyStage, ...] = tuple(JourneyStage)

STAGE_NAMES: dict[str, str] = {
    "INF": "Informieren",
    "BEF": "Befähigen",
    "EVA": "Evaluieren",
    "BEW": "Bewerten",
    "MQL": "Marketing Qualified Lead",
    "SAL": "Sales Accepted Lead",
    "SFC": "Sales first contact",
    "BAN": "Bedarfsanalyse",
    "BCI": "Buying center identified",
    "LPN": "Lösungspräsentation",
    "ANG": "Angebot",
    "ABS": "Abschluss",
    "AFS": "After-Sales",
    "WIK": "Wiederkauf",
    "CUS": "Cross-/Up-Sell",
}

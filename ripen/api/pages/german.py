"""The sign-up form's refusals in German: the form is German, so is what it says back.

The engine's reasons are English (the JSON API, the import summary and logs keep them); the
HTML form translates each known one by pattern, naming the field as the form labels it. A
reason without a translation is shown as it is — never hidden.
"""

from __future__ import annotations

import re
from collections.abc import Callable

FIELDS = {"email": "E-Mail-Adresse", "first_name": "Vorname", "last_name": "Nachname",
          "company": "Unternehmen", "job_title": "Position", "phone": "Telefon",
          "campaign": "Kampagne", "persona": "Thema", "consent_version": "Einwilligungstext",
          "content": "Inhalt", "language": "Sprache", "industry": "Branche",
          "company_size": "Unternehmensgröße", "region": "Land", "source": "Quelle",
          "form": "Formular"}


def _field(name: str) -> str:
    return FIELDS.get(name, name)


Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]
RULES: list[Rule] = [(re.compile(pattern), render) for pattern, render in [
    (r"^the e-mail address is empty$", lambda m: "Bitte geben Sie Ihre E-Mail-Adresse ein."),
    (r"^An email address must have an @-sign\.$",
     lambda m: "Eine E-Mail-Adresse braucht ein @-Zeichen (z. B. name@firma.de)."),
    (r"^The email address is not valid\. It must have exactly one @-sign\.$",
     lambda m: "Die E-Mail-Adresse ist ungültig: Sie muss genau ein @-Zeichen enthalten."),
    (r"^There must be something before the @-sign\.$",
     lambda m: "Vor dem @-Zeichen fehlt der Name."),
    (r"^There must be something after the @-sign\.$",
     lambda m: "Nach dem @-Zeichen fehlt die Domain (z. B. firma.de)."),
    (r"^The part after the @-sign is not valid\. It should have a period\.$",
     lambda m: "Der Teil nach dem @-Zeichen ist ungültig: Es fehlt ein Punkt (z. B. firma.de)."),
    (r"^the e-mail address is too long \(at most 320 characters\)$",
     lambda m: "Die E-Mail-Adresse ist zu lang (höchstens 320 Zeichen)."),
    (r"^the e-mail address contains a line break$",
     lambda m: "Die E-Mail-Adresse darf keinen Zeilenumbruch enthalten."),
    (r"^consent to e-mail is required to sign up$",
     lambda m: "Bitte willigen Sie ein, dass wir Ihnen E-Mails senden dürfen."),
    (r"^phone consent needs a phone number$",
     lambda m: "Für die telefonische Kontaktaufnahme brauchen wir Ihre Telefonnummer."),
    (r"^phone may hold digits, spaces and \+ \( \) / \. - only",
     lambda m: "Die Telefonnummer darf nur Ziffern, Leerzeichen und + ( ) / . - enthalten, "
               "z. B. +49 89 1234-56."),
    (r"^(\w+) is too long \((\d+) characters, at most (\d+)\)$",
     lambda m: f"{_field(m[1])} ist zu lang ({m[2]} Zeichen, höchstens {m[3]})."),
    (r"^(\w+) starts with '(.)' \(a spreadsheet formula\?\)$",
     lambda m: f"{_field(m[1])} darf nicht mit „{m[2]}“ beginnen."),
    (r"^header (\w+) contains a line break$",
     lambda m: f"{_field(m[1])} darf keinen Zeilenumbruch enthalten."),
    (r"^(\w+) must be text$", lambda m: f"{_field(m[1])} muss Text sein."),
    (r'^language ".*" is not a language code',
     lambda m: "Die Sprache ist kein Sprachcode wie de oder en."),
    (r'^company_size ".*" is not a whole number of employees$',
     lambda m: "Die Unternehmensgröße ist keine ganze Zahl von Mitarbeitenden."),
    (r"^company_size (\d+) is not between 1 and ([\d,]+) employees$",
     lambda m: f"Die Unternehmensgröße {m[1]} liegt nicht zwischen 1 und "
               f"{m[2].replace(',', '.')} Mitarbeitenden."),
    (r'^region ".*" is not a two-letter ISO 3166 country code',
     lambda m: "Das Land ist kein zweistelliger Ländercode wie DE, AT oder CH."),
    (r"^industry, company size and region need the company name$",
     lambda m: "Branche, Unternehmensgröße und Land gehören zum Unternehmen: Bitte geben Sie "
               "auch den Namen des Unternehmens an."),
    (r'^source ".*": the public form records',
     lambda m: "Diese Quelle kann das Formular nicht angeben."),
    (r'^unknown content ".*"$', lambda m: "Dieser Inhalt ist uns nicht bekannt."),
    (r'^unknown consent text version ".*"$',
     lambda m: "Diese Fassung des Einwilligungstextes ist uns nicht bekannt; bitte laden "
               "Sie die Seite neu."),
    (r"^the body's JSON is nested too deeply$|^the body is not valid JSON$",
     lambda m: "Die Anfrage ist ungültig."),
]]


def in_german(reason: str) -> str:
    """``reason`` as the German form says it; unknown reasons as they are."""
    for pattern, render in RULES:
        match = pattern.search(reason)
        if match:
            return render(match)
    if reason.startswith(("The domain name", "The email address", "The part ")):
        return f"Die E-Mail-Adresse ist ungültig ({reason})"  # email-validator's other reasons
    return reason


__all__ = ["in_german"]

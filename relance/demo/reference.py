"""Static reference tables behind the demo generator: sectors, regions, names, and the vocabularies of reminders
and disputes.

Kept apart from the simulation so the priors can be read (and challenged) in one place. Payment-delay priors
follow ``shared/reference/risk_data_apis.md`` §4.4: days-late lognormal per NAF section with median about
0.6 x the sourced mean, size and region multipliers, P(on time) around one half.
"""

from __future__ import annotations

import unicodedata

import numpy as np

# --- sectors ---------------------------------------------------------------------------------------------
# section letter -> (share of B2B customers, sourced mean days late, logit shift of P(on time),
#                   relative insolvency hazard, words used in company names)
SECTIONS: dict[str, tuple[float, float, float, float, tuple[str, ...]]] = {
    "F": (0.18, 17.0, -0.15, 2.0, ("Bâtiment", "Constructions", "Rénovation", "Maçonnerie", "Travaux")),
    "G": (0.22, 10.9, 0.30, 1.0, ("Distribution", "Négoce", "Commerce", "Dépôt", "Comptoir")),
    "I": (0.07, 20.0, -0.20, 1.8, ("Brasserie", "Hôtel", "Restaurant", "Bistrot", "Auberge")),
    "L": (0.06, 24.0, -0.30, 1.0, ("Immobilier", "Gestion", "Patrimoine", "Habitat", "Foncière")),
    "N": (0.10, 21.0, -0.20, 1.2, ("Services", "Nettoyage", "Intérim", "Assistance", "Propreté")),
    "J": (0.08, 15.0, 0.00, 0.8, ("Informatique", "Logiciels", "Digital", "Systèmes", "Data")),
    "C": (0.12, 10.0, 0.20, 0.9, ("Industrie", "Mécanique", "Ateliers", "Usinage", "Fabrication")),
    "H": (0.08, 16.0, -0.05, 1.1, ("Transports", "Logistique", "Express", "Fret", "Messagerie")),
    "M": (0.06, 12.0, 0.10, 0.7, ("Conseil", "Études", "Ingénierie", "Expertise", "Audit")),
    "S": (0.03, 21.0, -0.20, 1.0, ("Coiffure", "Beauté", "Institut", "Salon", "Esthétique")),
}
SECTION_LETTERS: tuple[str, ...] = tuple(SECTIONS)

# NAF rev.2 sub-classes (code, section, activity label as written in registry extracts).
NAF_CODES: tuple[tuple[str, str, str], ...] = (
    ("41.20A", "F", "Construction de maisons individuelles"),
    ("43.21A", "F", "Travaux d'installation électrique dans tous locaux"),
    ("43.22A", "F", "Travaux d'installation d'eau et de gaz en tous locaux"),
    ("43.34Z", "F", "Travaux de peinture et vitrerie"),
    ("43.99C", "F", "Travaux de maçonnerie générale et gros œuvre de bâtiment"),
    ("46.90Z", "G", "Commerce de gros non spécialisé"),
    ("47.11D", "G", "Supermarchés"),
    ("45.20A", "G", "Entretien et réparation de véhicules automobiles légers"),
    ("46.73A", "G", "Commerce de gros de bois et de matériaux de construction"),
    ("56.10A", "I", "Restauration traditionnelle"),
    ("55.10Z", "I", "Hôtels et hébergement similaire"),
    ("68.20B", "L", "Location de terrains et d'autres biens immobiliers"),
    ("68.31Z", "L", "Agences immobilières"),
    ("81.21Z", "N", "Nettoyage courant des bâtiments"),
    ("78.20Z", "N", "Activités des agences de travail temporaire"),
    ("82.99Z", "N", "Autres activités de soutien aux entreprises n.c.a."),
    ("62.01Z", "J", "Programmation informatique"),
    ("58.29C", "J", "Édition de logiciels applicatifs"),
    ("25.62B", "C", "Mécanique industrielle"),
    ("10.71C", "C", "Boulangerie et boulangerie-pâtisserie"),
    ("49.41A", "H", "Transports routiers de fret interurbains"),
    ("52.29A", "H", "Messagerie, fret express"),
    ("69.20Z", "M", "Activités comptables"),
    ("71.12B", "M", "Ingénierie, études techniques"),
    ("96.02A", "S", "Coiffure"),
)

# --- size bands ------------------------------------------------------------------------------------------
# band -> (share of B2B, delay multiplier, median invoice EUR, credit limit EUR, invoicing activity)
SIZE_BANDS: dict[str, tuple[float, float, float, float, float]] = {
    "micro": (0.50, 1.10, 900.0, 5_000.0, 1.0),
    "small": (0.30, 0.95, 2_800.0, 20_000.0, 1.3),
    "medium": (0.15, 1.15, 9_000.0, 75_000.0, 2.0),
    "large": (0.05, 1.40, 30_000.0, 250_000.0, 3.0),
}
SIZE_NAMES: tuple[str, ...] = tuple(SIZE_BANDS)

# --- regions ---------------------------------------------------------------------------------------------
# name -> (weight, delay multiplier, INSEE region code, department code, department name, city, postcode)
REGIONS: dict[str, tuple[float, float, int, str, str, str, str]] = {
    "Île-de-France": (0.24, 1.4, 11, "75", "Paris", "Paris", "75011"),
    "Auvergne-Rhône-Alpes": (0.12, 1.0, 84, "69", "Rhône", "Lyon", "69003"),
    "Nouvelle-Aquitaine": (0.09, 0.8, 75, "33", "Gironde", "Bordeaux", "33000"),
    "Occitanie": (0.09, 1.0, 76, "31", "Haute-Garonne", "Toulouse", "31000"),
    "Hauts-de-France": (0.08, 1.0, 32, "59", "Nord", "Lille", "59000"),
    "Provence-Alpes-Côte d'Azur": (0.08, 1.0, 93, "13", "Bouches-du-Rhône", "Marseille", "13008"),
    "Grand Est": (0.07, 1.0, 44, "67", "Bas-Rhin", "Strasbourg", "67000"),
    "Pays de la Loire": (0.06, 0.8, 52, "44", "Loire-Atlantique", "Nantes", "44000"),
    "Bretagne": (0.05, 0.8, 53, "35", "Ille-et-Vilaine", "Rennes", "35000"),
    "Normandie": (0.04, 1.0, 28, "76", "Seine-Maritime", "Rouen", "76000"),
    "Bourgogne-Franche-Comté": (0.03, 1.0, 27, "21", "Côte-d'Or", "Dijon", "21000"),
    "Centre-Val de Loire": (0.03, 1.0, 24, "45", "Loiret", "Orléans", "45000"),
    "Corse": (0.005, 1.0, 94, "2A", "Corse-du-Sud", "Ajaccio", "20000"),
    "Guadeloupe": (0.01, 1.6, 1, "971", "Guadeloupe", "Pointe-à-Pitre", "97110"),
    "Martinique": (0.008, 1.6, 2, "972", "Martinique", "Fort-de-France", "97200"),
    "La Réunion": (0.012, 1.6, 4, "974", "La Réunion", "Saint-Denis", "97400"),
    "Guyane": (0.005, 1.6, 3, "973", "Guyane", "Cayenne", "97300"),
}
REGION_NAMES: tuple[str, ...] = tuple(REGIONS)
FOREIGN_REGION = "England"  # the few GBP customers are UK companies (no SIREN)

# --- postal addresses --------------------------------------------------------------------------------------
# Towns a customer of each region is addressed in (city, postal code): the region's city of REGIONS first. The
# street is drawn from common street names, so an address is plausible without pointing at anyone in particular;
# the demo's letters are only ever written to the local outbox.
REGION_TOWNS: dict[str, tuple[tuple[str, str], ...]] = {
    "Île-de-France": (("Paris", "75011"), ("Paris", "75015"), ("Boulogne-Billancourt", "92100"), ("Créteil", "94000")),
    "Auvergne-Rhône-Alpes": (("Lyon", "69003"), ("Grenoble", "38000"), ("Clermont-Ferrand", "63000")),
    "Nouvelle-Aquitaine": (("Bordeaux", "33000"), ("Mérignac", "33700"), ("Limoges", "87000")),
    "Occitanie": (("Toulouse", "31000"), ("Montpellier", "34000"), ("Nîmes", "30000")),
    "Hauts-de-France": (("Lille", "59000"), ("Roubaix", "59100"), ("Amiens", "80000")),
    "Provence-Alpes-Côte d'Azur": (("Marseille", "13008"), ("Aix-en-Provence", "13100"), ("Nice", "06000")),
    "Grand Est": (("Strasbourg", "67000"), ("Metz", "57000"), ("Reims", "51100")),
    "Pays de la Loire": (("Nantes", "44000"), ("Angers", "49000"), ("Le Mans", "72000")),
    "Bretagne": (("Rennes", "35000"), ("Brest", "29200"), ("Vannes", "56000")),
    "Normandie": (("Rouen", "76000"), ("Caen", "14000"), ("Le Havre", "76600")),
    "Bourgogne-Franche-Comté": (("Dijon", "21000"), ("Besançon", "25000")),
    "Centre-Val de Loire": (("Orléans", "45000"), ("Tours", "37000")),
    "Corse": (("Ajaccio", "20000"), ("Bastia", "20200")),
    "Guadeloupe": (("Pointe-à-Pitre", "97110"), ("Baie-Mahault", "97122")),
    "Martinique": (("Fort-de-France", "97200"), ("Le Lamentin", "97232")),
    "La Réunion": (("Saint-Denis", "97400"), ("Saint-Pierre", "97410")),
    "Guyane": (("Cayenne", "97300"), ("Kourou", "97310")),
}
STREET_TYPES_FR: tuple[str, ...] = ("rue", "rue", "avenue", "boulevard", "place", "allée", "impasse", "chemin")
STREET_NAMES_FR: tuple[str, ...] = (
    "de la République", "Victor Hugo", "Jean Jaurès", "des Lilas", "du Moulin", "de la Gare", "Pasteur",
    "des Tilleuls", "du Général de Gaulle", "de l'Église", "Gambetta", "des Acacias", "du Port", "Voltaire",
    "de la Paix", "des Écoles",
)  # fmt: skip
# second lines: a business's site, a consumer's flat ('{n}' is a drawn number)
ADDRESS_LINE2_B2B_FR: tuple[str, ...] = (
    "Zone d'activités des Portes", "Parc d'activités de la Gare", "Bâtiment {n}", "ZI Nord, lot {n}",
    "Immeuble Le Forum",
)  # fmt: skip
ADDRESS_LINE2_B2C_FR: tuple[str, ...] = ("Appartement {n}", "Résidence Les Pins", "Bâtiment C, escalier {n}")
# British towns with a postcode district; the sector and unit ('4AB') are drawn
UK_TOWNS: tuple[tuple[str, str], ...] = (
    ("London", "EC1V"), ("London", "SE1"), ("Manchester", "M1"), ("Birmingham", "B3"), ("Leeds", "LS1"),
    ("Bristol", "BS1"),
)  # fmt: skip
STREET_NAMES_GB: tuple[str, ...] = ("Station", "High", "Church", "Mill", "Victoria", "Park", "King", "Bridge")
STREET_TYPES_GB: tuple[str, ...] = ("Road", "Street", "Lane", "Way")
ADDRESS_LINE2_GB: tuple[str, ...] = ("Unit {n}", "Suite {n}", "Riverside House", "Floor {n}")
# the letters a postcode's unit uses (Royal Mail leaves out C, I, K, M, O and V)
UK_POSTCODE_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

# --- names -----------------------------------------------------------------------------------------------
_SURNAMES_TEXT = """
    Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel Lefèvre Leroy
    Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine Rousseau Vincent Muller
    Lefebvre Faure André Mercier Blanc Guérin Boyer Garnier Chevalier François Legrand Gauthier Garcia
    Perrin Robin Clément Morin Nicolas Henry Roussel Mathieu Gautier Masson Marchand Duval Denis Dumont
    Marie Lemaire Noël Meyer Dufour Meunier Brun Blanchard Giraud Joly Rivière Lucas Brunet Gaillard
    Barbier Arnaud
"""
SURNAMES: tuple[str, ...] = tuple(_SURNAMES_TEXT.split())
_FIRST_NAMES_TEXT = """
    Marie Jean Pierre Michel Philippe Nathalie Isabelle Sylvie Catherine Nicolas Christophe Stéphane
    Sophie Julien Camille Léa Manon Chloé Lucas Hugo Thomas Louis Emma Inès Sarah Antoine Céline Valérie
    Françoise Hélène Laurent Olivier Éric Frédéric Aurélie Julie Mathieu Maxime Pauline Zoé
"""
FIRST_NAMES: tuple[str, ...] = tuple(_FIRST_NAMES_TEXT.split())
LEGAL_FORMS: tuple[tuple[str, str, float], ...] = (
    ("SAS", "Société par actions simplifiée", 0.40),
    ("SARL", "Société à responsabilité limitée", 0.35),
    ("EURL", "Entreprise unipersonnelle à responsabilité limitée", 0.12),
    ("SA", "Société anonyme", 0.08),
    ("SASU", "Société par actions simplifiée à associé unique", 0.05),
)
UK_SUFFIXES: tuple[str, ...] = ("Ltd", "Limited", "UK Ltd", "plc")
# Reserved for documentation and tests (RFC 2606 / 6761; see relance.demo.safety): nobody receives mail there.
# Six of them, as many as the consumer mail providers they stand in for, so the draws stay the same.
B2C_MAIL_DOMAINS: tuple[str, ...] = (
    "example.com",
    "example.org",
    "example.net",
    "mail.example",
    "courriel.example",
    "boite.test",
)
B2B_MAIL_SUFFIX_FR = ".example"
B2B_MAIL_SUFFIX_GB = ".uk.example"

# --- dunning and disputes ---------------------------------------------------------------------------------
CHANNELS: tuple[str, ...] = ("email", "sms", "letter", "call")
TONES: tuple[str, ...] = ("preventive", "cordial", "firm")
RESPONSES: tuple[str, ...] = ("none", "promise_to_pay", "dispute", "paid")
DISPUTE_REASONS: tuple[str, ...] = (
    "price_disagreement",
    "goods_not_received",
    "quality_issue",
    "wrong_quantity",
    "missing_purchase_order",
    "duplicate_invoice",
)


def ascii_slug(text: str) -> str:
    """Lower-case ASCII form of a French word, for e-mail addresses (``Lefèvre`` -> ``lefevre``)."""
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in norm.lower() if ch.isalnum())


def as_array(values: tuple[str, ...] | list[str]) -> np.ndarray:
    """Object array of strings, so fancy indexing by integer codes builds columns without a loop."""
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out

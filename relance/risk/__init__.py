"""External company-risk data: registry clients, the normalised event vocabulary, and what follows from it.

``events`` (the vocabulary), ``http`` (retries, rate limits, the response cache), one module per publisher
(``bodacc``, ``recherche``, ``companies_house``), ``classify`` (payloads -> events and profiles), ``providers``
(the one interface the flow calls, configurable) and ``alerts``. No Prefect imports: ``flows/refresh_company_risk``
wires them.
"""

"""HTTP routes: one blueprint per audience (API, CDS Hooks, FHIR, operations, OpenAPI)."""

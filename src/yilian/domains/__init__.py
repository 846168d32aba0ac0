"""The hospital's domains, each built on the FHIR record: its rules in a service, its named
queries in a repository, its pages and APIs beside them. Domains share FHIR resources and
never import each other's internals."""

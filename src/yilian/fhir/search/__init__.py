"""FHIR search: the parameter registry, write-time index extraction, and queries over the index.

    registry.py   which parameters each resource type has, and the expression each uses there
    extract.py    a resource → its rows for the idx_* tables (paths.py walks, rows.py builds;
                  fallback.py evaluates with fhirpathpy what the walker cannot)
    normalize.py, dates.py
                  the normalised forms both sides must compute alike (text, hashes, decimal
                  precision, date ranges)
    composite.py  how a composite parameter is indexed and searched (its components' rows)
    unions.py     parameters searched on other parameters' rows (combo-code: code and
                  component-code), which write none of their own
"""

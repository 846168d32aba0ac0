"""The network: the medical centre, its hospitals and campuses, community health centres and
family-doctor teams; departments (HealthcareService) and places down to each bed (Location)."""

"""Inpatients: admission, transfer and discharge ($admit, $transfer, $discharge), bed states,
the bed board and the census."""

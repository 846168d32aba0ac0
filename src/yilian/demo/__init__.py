"""The demo network: a realistic hospital group, its people and a year of stays (`yilian demo`)."""

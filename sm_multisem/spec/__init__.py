"""The model as specified: formula, data, layout, labels, relaxations and the parameter table."""

"""The parameter table compiled to the arguments of a likelihood."""

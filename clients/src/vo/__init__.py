"""vo: the contract, typed clients and the vo command."""

"""A package of your own with an auxiliary loss term for a3c-exp (examples/aux_loss)."""

"""Deep value-aware model learning (torch): models, objectives, TRPO, environments, Algorithm 2."""

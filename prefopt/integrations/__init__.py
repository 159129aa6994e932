"""Bridges to other training libraries: ``prefopt.integrations.trl`` (TRL's DPOTrainer with any prefopt loss)."""

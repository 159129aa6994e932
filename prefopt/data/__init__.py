"""Preference data: records (TRL pairs and ranked lists), tokenization, and self-generated samples."""

"""The prepare_data Beam jobs and the melody corpus readers."""

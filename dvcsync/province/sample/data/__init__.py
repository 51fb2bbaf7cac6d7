"""Static data of the sample one-stop system (procedure catalogue, agencies), shipped as package data."""

"""Local emulators of the platforms the provider uploads to, served by ``media-sandbox``."""

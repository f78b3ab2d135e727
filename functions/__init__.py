"""AWS Lambda handlers: thin adapters from Lambda events to VidLuxe stages and services."""

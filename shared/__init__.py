"""VidLuxe core: the embedded ASL engine, storage interfaces, stages and the CLI."""

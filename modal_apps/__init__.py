"""VidLuxe's GPU stages on Modal: one app per stage (matting, upscale, style, i2v), see README.md.

Each app module declares its Modal image, GPU, timeout and retries beside the function it serves; the
networks are plain PyTorch in :mod:`modal_apps.nets`; :mod:`modal_apps.gpu` holds what every function
shares (the object store, the Step Functions task-token reporter, idempotency by output key).
"""

"""Providers: the interchangeable implementations behind a stage (embedded CPU code or a cloud model).

Each interface is a Protocol with an embedded implementation that needs no account and no GPU, and
cloud implementations whose SDKs are imported lazily, only when that provider is built:

- :mod:`shared.providers.style`: StyleProvider (local image analysis; B-LoRA on Modal).
- :mod:`shared.providers.images`: ImageProvider (procedural; Replicate Flux; Google's Nano Banana).
"""

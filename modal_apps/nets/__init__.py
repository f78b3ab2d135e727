"""The networks the GPU stages run, in plain PyTorch (no torchvision), laid out like the originals so the
official checkpoints load by parameter name (see :func:`modal_apps.nets.weights.load_checkpoint`)."""

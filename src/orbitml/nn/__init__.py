"""Deep-learning building blocks: plain torch.nn.Modules, losses, metrics, Lightning modules.

Import submodules directly (``from orbitml.nn.xxx import ...``); this package imports no torch by itself.
"""

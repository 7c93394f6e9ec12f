"""minmap: library-trained mineral mapping with a fully convolutional 3-D CNN (Habashi et al. 2025).

Libraries per class are resampled to the scene's bands, augmented and turned into synthetic
spatial patches; a residual 3-D CNN with class and abundance heads is trained on them and mapped
over whole scenes in one fully convolutional pass, beside an FCLS class-mean baseline.
"""

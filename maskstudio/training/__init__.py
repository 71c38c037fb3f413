"""maskstudio.training — train, evaluate and ship the starter models (CPU or CUDA).

* :mod:`.data` — pair discovery, seeded split (``split.json``), resized numpy cache, l/r-swapping flip
* :mod:`.parser_trainer` — :class:`~maskstudio.models.face_parser.FaceParser` (weighted CE + Dice)
* :mod:`.dmn_trainer` — MaskGAN DMN first stage (patch GAN + feature matching + L1 + parser losses)
* :mod:`.pseudo` — confident parser pseudo-labels for the unlabelled faces (DMN data, parser self-training)
* :mod:`.discriminator` — multi-scale patch discriminator (training only)
* :mod:`.metrics`, :mod:`.evaluate` — F1 / IoU / accuracy / PSNR, ``maskstudio eval``
* :mod:`.make_samples` — template mask + DMN-rendered gallery; :mod:`.ship` — fp16 export + model card

CLI: ``maskstudio train parser|dmn|samples``, ``maskstudio eval parser|dmn``, ``maskstudio parse``.
"""
